"""A defect in the data, found before the curves are believed: what the data audit measured
(`Audit`, summary.json's `audit`) and the cases it decides.

| case        | evidence                                                  | what to do              |
|-------------|-----------------------------------------------------------|-------------------------|
| leakage     | >= 1% (and >= 3) of val or test has a copy in train       | remove them, retrain    |
| imbalance   | predicting the majority class meets an accuracy goal      | goal=f1, class weights  |
| noise_floor | the labels' estimated noise caps accuracy below the goal, | clean the labels        |
|             | and the model is closer to that cap than to the goal      |                         |

All three are cases that tuning cannot fix: the report says so, and the autopilot stops on them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from practicum.config.goal import Goal
from practicum.methodology.label_audit import accuracy_ceiling

# cases where a goal the numbers meet is not met: they measure copies, or a constant would pass
UNTRUSTED = ("leakage", "imbalance")
# duplicates in at least this share of a split, and at least LEAK_MIN of them, make the case
# `leakage`; fewer are noted in the evidence (a table with coarse values may hold a natural pair)
LEAK_SHARE = 0.01
LEAK_MIN = 3
NEAR_GOAL = 0.02  # a majority class this close to an accuracy target "nearly meets" it


@dataclass
class Audit:
    """What the data audit of one run found (all counts over the audited examples)."""

    audited: dict[str, int] = field(default_factory=dict)  # examples per split
    label_issues: int | None = None
    label_noise_rate: float | None = None
    train_labels: str | None = None  # how the training labels were scored out of sample
    # the estimated noise rate of each audited split
    label_noise_rates: dict[str, float] = field(default_factory=dict)
    duplicates: dict[str, int] | None = None  # {"val": n, "test": n}
    # val and test metrics of the model with the duplicated examples left out
    without_duplicates: dict[str, float] | None = None
    class_shares: dict[str, float] | None = None  # training share of each class, by name
    majority_class: str | None = None
    majority: dict[str, float] | None = None  # the majority class's val/test metrics
    files: list[str] = field(default_factory=list)  # what it wrote in the run directory
    skipped: list[str] = field(default_factory=list)  # what it could not audit, and why
    seconds: float | None = None  # what the audit added to the run's wall time

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Audit | None:
        if not values:
            return None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

    def leaked(self, sizes: dict[str, int] | None) -> list[str]:
        """The splits with enough duplicates of training examples to distrust their scores."""
        found = self.duplicates or {}
        sizes = sizes or self.audited
        return [
            split
            for split, n in found.items()
            if n >= LEAK_MIN and n >= LEAK_SHARE * max(sizes.get(split, 0), 1)
        ]


@dataclass
class DataCase:
    case: str
    headline: str
    stop: str


# what the curves say when the model has not converged: its own probabilities then make any data
# look noisy, so only the training labels' estimate (from a model of its own) is believed; the
# same below MIN_EPOCHS, where the curves cannot tell (believed_noise_rate)
UNCONVERGED = ("cut_short", "too_few_steps", "lr_too_low", "lr_too_high")
MIN_EPOCHS = 3


def converged(curve_case: str | None, epochs: int) -> bool:
    """Whether the model's own probabilities can be trusted to judge labels."""
    return curve_case not in UNCONVERGED and epochs >= MIN_EPOCHS


def data_case(
    audit: Audit | None,
    goal: Goal,
    metrics: dict[str, float],
    sizes: dict[str, int] | None,
    converged: bool = True,
) -> DataCase | None:
    """The data defect behind a run's result, if the audit found one that matters."""
    if audit is None:
        return None
    leaked = audit.leaked(sizes)
    if leaked:
        return _leakage(audit, leaked)
    if majority_meets_goal(audit, goal):
        return _imbalance(audit, goal)
    rate = believed_noise_rate(audit, converged)
    if rate is not None and noise_explains_gap(rate, goal, metrics):
        return _label_noise(audit, rate, goal, "labels" if converged else "training labels")
    return None


def believed_noise_rate(audit: Audit, converged: bool) -> float | None:
    """The noise rate the diagnosis trusts. A weak model flags good labels too, so two
    independent estimates must agree: the training labels' (a cross-fitted model of its own) and,
    when this run's model converged, every split's; the lower of the two. Without the training
    labels' estimate (image files without diagnosis.audit_train_images, too few examples per
    class) nothing is concluded."""
    train = audit.label_noise_rates.get("train")
    if train is None or audit.label_noise_rate is None:
        return None
    return min(train, audit.label_noise_rate) if converged else train


def _leakage(audit: Audit, leaked: list[str]) -> DataCase:
    counts = " and ".join(f"{audit.duplicates[s]} {s}" for s in leaked)
    return DataCase(
        "leakage",
        f"Leakage: {counts} examples have a copy in the training split, so those scores measure "
        "memory, not generalization.",
        "Examples are shared between splits: remove the copies from validation and test "
        "(duplicates.csv lists them), then train and judge again; tuning against leaked scores "
        "fits the copies.",
    )


def majority_meets_goal(audit: Audit, goal: Goal) -> bool:
    """Predicting the training split's majority class meets, or nearly meets, an accuracy goal."""
    if goal.metric.split("/", 1)[-1] != "acc" or goal.mode != "max" or not audit.majority:
        return False
    value = audit.majority.get(goal.at("val"))
    return value is not None and value >= float(goal.target) - NEAR_GOAL


def _imbalance(audit: Audit, goal: Goal) -> DataCase:
    value = audit.majority[goal.at("val")]
    share = (audit.class_shares or {}).get(audit.majority_class or "", 0.0)
    return DataCase(
        "imbalance",
        f"Imbalance: predicting the majority class ({audit.majority_class}, {share:.0%} of the "
        f"training examples) scores {goal.at('val')} = {value:.4f} against the target "
        f"{goal.target:g}; accuracy cannot tell a model from that constant.",
        "The goal does not measure the minority classes: judge by a balanced metric (goal=f1) "
        "and weight the classes (model.class_weights=balanced).",
    )


def noise_explains_gap(rate: float, goal: Goal, metrics: dict[str, float]) -> bool:
    """The labels' estimated noise caps accuracy below the target, and the model is closer to that
    cap than to the target: at least half of its shortfall is the labels'."""
    if goal.mode != "max" or goal.metric.split("/", 1)[-1] not in ("acc", "f1"):
        return False
    value, target = metrics.get(goal.at("val")), float(goal.target)
    ceiling = accuracy_ceiling(rate)
    if value is None or value >= target or ceiling >= target:
        return False
    return ceiling - value <= (target - value) / 2


def _label_noise(audit: Audit, rate: float, goal: Goal, which: str) -> DataCase:
    ceiling = accuracy_ceiling(rate)
    return DataCase(
        "noise_floor",
        f"A noise floor: about {rate:.1%} of the {which} look wrong, which caps accuracy near "
        f"{ceiling:.4f}, below the target {goal.target:g}.",
        f"The labels cap the score: clean them first (label_issues.csv lists the "
        f"{audit.label_issues} examples that look mislabelled, most suspicious first); no model "
        f"scores much above {ceiling:.4f} against these labels.",
    )


def audit_evidence(audit: Audit | None, goal: Goal, metrics: dict[str, float]) -> list[str]:
    """The evidence lines of the data audit: labels, duplicates, classes."""
    if audit is None:
        return []
    lines = []
    if audit.label_noise_rate is not None:
        total = sum(audit.audited.values())
        lines.append(
            f"Label audit (confident learning on out-of-sample probabilities; train: "
            f"{audit.train_labels or 'not audited'}): {audit.label_issues} of {total:,} labels "
            f"look wrong, an estimated noise rate of {audit.label_noise_rate:.1%}, which caps "
            f"accuracy near {accuracy_ceiling(audit.label_noise_rate):.4f}."
        )
        unjudged = audit.label_noise_rates.get("train") is None
        if unjudged and noise_explains_gap(audit.label_noise_rate, goal, metrics):
            lines.append(
                f"The {audit.label_noise_rate:.1%} flagged would explain the gap to the target, but "
                "a weak model flags good labels too: score the training labels as well to tell "
                "(diagnosis.audit_train_images=true for image files)."
            )
    if audit.duplicates is not None:
        lines.append(_duplicates_line(audit, goal, metrics))
    if audit.majority:
        lines.append(_classes_line(audit, goal))
    lines += [f"Not audited: {why}." for why in audit.skipped]
    return lines


def _duplicates_line(audit: Audit, goal: Goal, metrics: dict[str, float]) -> str:
    found = audit.duplicates or {}
    if not any(found.values()):
        return "No validation or test example has a copy in the training split."
    counts = ", ".join(f"{n} {split}" for split, n in found.items())
    parts = []
    for split in (s for s, n in found.items() if n):
        name = goal.at(split)
        plain, kept = metrics.get(name), (audit.without_duplicates or {}).get(name)
        if plain is not None and kept is not None:
            parts.append(f"{name} {kept:.4f} without them ({plain:.4f} with)")
    scores = f": {'; '.join(parts)}" if parts else ""
    return f"Examples with a (near) copy in the training split: {counts}{scores}."


def _classes_line(audit: Audit, goal: Goal) -> str:
    shares = sorted((audit.class_shares or {}).items(), key=lambda item: -item[1])
    shown = ", ".join(f"{name} {share:.1%}" for name, share in shares[:5])
    more = f" and {len(shares) - 5} more" if len(shares) > 5 else ""
    majority = audit.majority or {}
    scores = ", ".join(
        f"{split} {majority[goal.at(split)]:.4f}"
        for split in ("val", "test")
        if goal.at(split) in majority
    )
    return (
        f"Training classes: {shown}{more}. Predicting the majority class "
        f"({audit.majority_class}) scores {goal.metric.split('/', 1)[-1]}: {scores}."
    )
