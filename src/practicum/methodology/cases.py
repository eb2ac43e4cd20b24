"""The record of a diagnosis: which case of the methodology holds, why, and what to try next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from practicum.config.goal import Goal
from practicum.methodology.data_audit import Audit
from practicum.methodology.history import History

if TYPE_CHECKING:
    from practicum.methodology.code_facts import CodeFacts


@dataclass
class Remedy:
    """One thing to try next: the advice in words (with its command), and the config changes
    that carry it out, each a list of overrides that is one change (the autopilot tries them in
    order; empty when the remedy is not a config change, such as collecting data)."""

    key: str
    text: str
    changes: list[list[str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "text": self.text, "changes": self.changes}


@dataclass
class Diagnosis:
    verdict: str  # which split misses the goal: goal_met, high_train_error, ... (VERDICTS)
    headline: str
    evidence: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    # the cause behind the verdict (too_few_steps, under_capacity, lr_too_high, noise_floor, ...)
    case: str | None = None
    remedies: list[Remedy] = field(default_factory=list)
    # a case that tuning cannot fix (a bug, a mismatch, a noise floor): what to do instead
    stop: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "case": self.case,
            "headline": self.headline,
            "evidence": self.evidence,
            "next_steps": self.next_steps,
            "remedies": [remedy.as_dict() for remedy in self.remedies],
            "stop": self.stop,
        }


@dataclass
class RunFacts:
    """Everything the diagnosis weighs, gathered from one run (run.py) or made up by a test."""

    metrics: dict[str, float]
    goal: Goal
    history: History = field(default_factory=dict)
    best: int | None = None
    kind: str = "supervised"  # Task.diagnosis_kind: supervised, vae, gan
    problem: str | None = None  # Task.problem: classification, detection, ...
    lr: float | None = None
    max_epochs: int | None = None
    # the training loss of each step of the first and of the last epoch (StepLosses)
    first_steps: list[float] = field(default_factory=list)
    last_steps: list[float] = field(default_factory=list)
    # what a model that knows nothing scores (log C for C-class classification)
    chance_loss: float | None = None
    n_params: int | None = None  # trainable parameters
    num_classes: int | None = None
    sizes: dict[str, int] | None = None  # examples per split
    baseline: dict[str, float] | None = None  # the linear baseline's metrics
    # standard error of the goal metric on each split (val, test), from per-example values
    noise: dict[str, float] | None = None
    cut_short: str | None = None  # why the run was cut short (debug=fast, limit_train_batches)
    checks_failed: list[str] | None = None  # sanity checks that failed (debug=checks)
    # how this data module takes a validation split from the test distribution (explicit splits)
    split_hint: str | None = None
    # the config changes this run's config accepts, by knob (knobs.py), for the advice
    changes: dict[str, list[list[str]]] = field(default_factory=dict)
    # what the data audit found (labels, duplicates across splits, classes); None: not audited
    audit: Audit | None = None
    # what the run showed of its code: frozen parameters, probabilities as outputs, dead units, ...
    code: CodeFacts | None = None
    # the run's own overrides, which every advised command repeats (commands.py); None: unknown
    overrides: list[str] | None = None

    @property
    def init_loss(self) -> float | None:
        return self.first_steps[0] if self.first_steps else None
