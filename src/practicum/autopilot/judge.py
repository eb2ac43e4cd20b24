"""Keep or revert: a step's objective over its seeds, and whether it beats the best step by more
than the noise, measured on the same validation examples (methodology/paired.py)."""

from __future__ import annotations

import math
import statistics

from practicum.autopilot.trail import Step
from practicum.config.goal import Goal
from practicum.methodology.paired import Paired, compare, read_outcomes
from practicum.methodology.run_summary import RunSummary, finite_or_none


def combine(
    goal: Goal, summaries: list[RunSummary]
) -> tuple[dict[str, float | None], float | None]:
    """The goal metric per split over a step's seeds (None when any seed has none), and the
    standard error of the val mean: the val split's sampling noise plus the seeds' spread."""
    objective: dict[str, float | None] = {}
    for split in ("train", "val", "test"):
        values = [
            finite_or_none(s.metrics.get(goal.at(split))) if s.status == "completed" else None
            for s in summaries
        ]
        objective[split] = None if None in values or not values else statistics.fmean(values)
    errors = [(s.standard_errors or {}).get("val") for s in summaries]
    if objective["val"] is None or None in errors:
        return objective, None
    spread = 0.0
    if len(summaries) > 1:
        values = [s.metrics[goal.at("val")] for s in summaries]
        spread = statistics.stdev(values) / math.sqrt(len(values))
    return objective, math.hypot(statistics.fmean(errors), spread)


def middle(summaries: list[RunSummary], value: float | None) -> RunSummary:
    """The seed whose objective is nearest the step's mean: its diagnosis speaks for the step."""
    return min(summaries, key=lambda s: abs((finite_or_none(s.objective) or 0) - (value or 0)))


def paired_gain(goal: Goal, best: Step, run_dirs: list[str]) -> Paired | str:
    """The candidate's paired gain over the best step on the same val examples (paired.py), or
    why there is none."""
    kept = [read_outcomes(d) for d in best.run_dirs]
    candidate = [read_outcomes(d) for d in run_dirs]
    if any(o is None for o in [*kept, *candidate]):
        return "a run left no val_outcomes.npz"
    return compare(goal.at("val"), goal.mode, kept, candidate)


def decide(
    goal: Goal,
    best: Step,
    value: float | None,
    se: float | None,
    goal_met: bool,
    min_gain: float,
    paired: Paired | str = "not measured",
) -> tuple[str, str]:
    """Keep or revert, on the same val examples where the runs left their outcomes:

    - kept when the paired gain is beyond two paired standard errors (and at least `min_gain`);
    - kept when it meets the goal the best step missed, with no loss;
    - kept as *probably better* when the gain is positive and beyond one paired standard error:
      a small real gain is not thrown away, and the next change builds on it;
    - else reverted.

    Without per-example outcomes the same rules run on the two steps' own standard errors
    (unpaired), and the reason says so. Every reason shows the gain and its uncertainty, and the
    unpaired bar beside the paired one."""
    if value is None:
        return "reverted", "no finite objective"
    if best.objective.get("val") is None:
        return "kept", "the first finite objective"
    unpaired_bar = 2 * math.hypot(best.se_val or 0.0, se or 0.0)
    if isinstance(paired, Paired):
        gain, spread = paired.gain, paired.se
        evidence = f"{paired.line()}; the unpaired bar would be {unpaired_bar:.4f}"
    else:
        gain = value - best.objective["val"]
        gain = gain if goal.mode == "max" else -gain
        spread = unpaired_bar / 2
        evidence = f"unpaired {gain:+.4f} ± {spread:.4f} SE ({paired})"
    bar = max(2 * spread, min_gain)
    if gain > bar:
        return "kept", f"{evidence}: beyond 2 SE"
    if goal_met and gain >= 0:
        return "kept", f"{evidence}: within the noise, but meets the goal"
    if gain > 0 and gain > spread:
        return "kept", f"{evidence}: beyond 1 SE, probably better (kept, and built on)"
    return "reverted", f"{evidence}: not beyond the noise"
