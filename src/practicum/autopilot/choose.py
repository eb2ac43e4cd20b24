"""Which change comes next: the remedies of the best step's diagnosis, in their order, each a
list of overrides; the first one no step has tried, or the stop that says none is left."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from practicum.autopilot.step_overrides import canonical, merged
from practicum.autopilot.trail import Step
from practicum.config import AUTOPILOT_KNOBS, part_name
from practicum.config.goal import Goal
from practicum.errors import UserError

# each remedy the autopilot may apply, and the group of changes knobs.run_changes builds for it
KNOB_CHANGES = {
    "lower_lr": "lr_down",
    "raise_lr": "lr_up",
    "range_test": "range_test",
    "stabilize": "stabilize",
    "train_longer": "epochs",
    "capacity": "capacity_up",
    "smaller": "capacity_down",
    "regularize": "regularize_up",
    "less_regularization": "regularize_down",
    "early_stopping": "patience_down",
    "collapse": "collapse",
}
assert set(KNOB_CHANGES) == set(AUTOPILOT_KNOBS)


@dataclass
class Candidate:
    remedy: str
    change: list[str]
    why: str


@dataclass
class Stop:
    reason: str  # goal_met, unfixable, max_runs, max_minutes, no_remedy
    message: str
    case: str | None = None  # the case that tuning cannot fix (unfixable): mismatch, noise_floor..


def check_knobs(cfg: DictConfig, allowed: list[str]) -> None:
    """A model with none of the knobs the autopilot may turn is one line, before any run."""
    from practicum.config.knobs import run_changes

    changes = run_changes(cfg)
    if not any(changes.get(KNOB_CHANGES[k]) for k in allowed):
        model = part_name(cfg, "model")
        raise UserError(
            f"model={model} has none of the knobs autopilot.knobs allows "
            f"({', '.join(allowed)}): allow more (e.g. autopilot.knobs=null) or pick a "
            "model whose net declares them (docs/autopilot.md)"
        )


def candidates(
    best: Step, allowed: list[str], skipped: set[tuple[int, tuple[str, ...]]], tried: set
) -> Iterator[Candidate]:
    """The changes of the best step's remedies (of the `allowed` knobs), in their order, that no
    step has tried and that were not skipped from this best step."""
    diagnosis = best.diagnosis or {}
    why = _why(diagnosis)
    for remedy in diagnosis.get("remedies") or []:
        if remedy["key"] not in allowed:
            continue
        for change in remedy.get("changes") or []:
            if (best.number, tuple(change)) in skipped:
                continue
            if remedy["key"] == "range_test" or (
                canonical(merged(best.overrides, change)) not in tried
            ):
                yield Candidate(remedy["key"], list(change), why)


def no_remedy(best: Step) -> Stop:
    diagnosis = best.diagnosis or {}
    beyond = [r["text"] for r in diagnosis.get("remedies") or [] if not r.get("changes")]
    also = f"; beyond tuning it advises: {beyond[0]}" if beyond else ""
    return Stop(
        "no_remedy",
        f"every change the diagnosis of step {best.number} "
        f"({diagnosis.get('case') or best.verdict}) calls for has been tried{also}",
    )


def next_candidate(
    best: Step, allowed: list[str], skipped: set[tuple[int, tuple[str, ...]]], tried: set
) -> Candidate | Stop:
    """The first of `candidates`, or the stop that says none is left."""
    return next(candidates(best, allowed, skipped, tried), None) or no_remedy(best)


# remedies that act on a generalization gap: they cannot help a model that does not fit training
GAP_REMEDIES = ("regularize", "early_stopping", "smaller")


def why_inert(candidate: Candidate, best: Step, goal: Goal, cfg: DictConfig) -> str | None:
    """Why this change cannot act on this run, so running it would waste a run; None if it can.

    - early stopping with a patience of at least the epochs left never stops anything;
    - a regularizer, an earlier stop or a smaller net on a model whose training error misses the
      target: there is no gap to close, and they only raise the training error."""
    stopping = (cfg.get("callbacks") or {}).get("early_stopping")
    if candidate.remedy == "early_stopping" and stopping is not None:
        epochs = int(cfg.trainer.max_epochs)
        if int(stopping.patience) >= epochs - 1:
            return (
                f"patience {int(stopping.patience)} with max_epochs {epochs}: early stopping "
                "cannot stop the run"
            )
    train = best.objective.get("train")
    if candidate.remedy in GAP_REMEDIES and train is not None and not goal.met(train):
        metric = goal.metric.split("/", 1)[-1]
        return (
            f"training {metric} {train:.4f} misses the target {goal.target:g}: there is no "
            "generalization gap to close"
        )
    return None


def _why(diagnosis: dict[str, Any]) -> str:
    """The verdict and the case's own sentence of the headline (the evidence is in the run's
    report.md)."""
    headline = str(diagnosis.get("headline") or "")
    _, _, case_line = headline.partition(". ")
    return f"{diagnosis.get('verdict')}: {case_line or headline}"
