"""The autopilot (`python train.py autopilot=default`): the design process as a loop. Diagnose the
best run so far, make the one change its case calls for, rerun; keep the change only if it beats
the noise; stop when the goal is met, the budget ends or the case is one tuning cannot fix.
The loop is in loop.py; which change comes next in choose.py, keep or revert in judge.py, a
step's overrides and config in overrides.py, the range test remedy in range_test.py, and the
record (trail.csv, autopilot.json, the terminal lines) in trail.py."""

from practicum.autopilot.loop import run_autopilot

__all__ = ["run_autopilot"]
