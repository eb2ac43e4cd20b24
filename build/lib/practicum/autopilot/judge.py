"""Keep or revert: a step's objective over its seeds, and whether it beats the best step by more
than the noise."""

from __future__ import annotations

import math
import statistics

from practicum.autopilot.trail import Step
from practicum.config.goal import Goal
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


def decide(
    goal: Goal, best: Step, value: float | None, se: float | None, goal_met: bool, min_gain: float
) -> tuple[str, str]:
    """Kept when the val objective beats the best by more than the noise (two standard errors
    of the difference, at least `min_gain`), or reaches the goal the best missed."""
    if value is None:
        return "reverted", "no finite objective"
    if best.objective.get("val") is None:
        return "kept", "the first finite objective"
    gain = value - best.objective["val"]
    gain = gain if goal.mode == "max" else -gain
    noise = 2 * math.hypot(best.se_val or 0.0, se or 0.0)
    bar = max(noise, min_gain)
    if gain > bar:
        return "kept", f"{gain:+.4f} > noise {bar:.4f}"
    if goal_met and gain > 0:
        return "kept", f"{gain:+.4f}, within noise {bar:.4f}, but meets the goal"
    return "reverted", f"{gain:+.4f}, not beyond noise {bar:.4f}"
