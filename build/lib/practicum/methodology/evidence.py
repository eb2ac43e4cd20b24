"""Evidence lines the diagnoses share: the goal metric per split, the linear baseline."""

from __future__ import annotations

from practicum.config.goal import Goal


def values_line(metrics: dict[str, float], goal: Goal) -> str:
    parts = []
    for split in ("train", "val", "test"):
        value = metrics.get(goal.at(split))
        if value is not None:
            parts.append(f"{split} {value:.4f} ({'meets' if goal.met(value) else 'misses'})")
    return f"Goal {goal.describe()}: " + ", ".join(parts) + "."


def baseline_line(baseline: dict[str, float], metrics: dict[str, float], goal: Goal) -> str:
    value = baseline.get(goal.metric)
    if value is None:
        return "The linear baseline gave no value for the goal metric."
    rabbit = (
        "it already meets the goal: this may be a rabbit, not a job for a cannon."
        if goal.met(value)
        else "it misses the goal."
    )
    return f"A linear model on the same split reaches {goal.metric} = {value:.4f}; {rabbit}"
