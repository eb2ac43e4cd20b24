"""The goal: an error metric, its direction and the value that is good enough; and the metrics a
task can offer as one (`Metric`, declared on each task class as `Task.logged_metrics`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Goal:
    metric: str  # e.g. "val/acc"
    mode: str  # "max" or "min"
    target: float

    @classmethod
    def from_config(cls, node: Any) -> Goal:
        return cls(metric=str(node.metric), mode=str(node.mode), target=float(node.target))

    def met(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        return value >= self.target if self.mode == "max" else value <= self.target

    def better(self, a: float, b: float) -> bool:
        """True when `a` is strictly better than `b`."""
        return a > b if self.mode == "max" else a < b

    def at(self, split: str) -> str:
        """The same metric on another split: `val/acc` -> `test/acc`."""
        return f"{split}/{self.metric.split('/', 1)[-1]}"

    def describe(self) -> str:
        sign = ">=" if self.mode == "max" else "<="
        return f"{self.metric} {sign} {self.target:g}"

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "mode": self.mode, "target": self.target}


FIT_SPLITS = ("train", "val")  # the splits logged every epoch of training


@dataclass(frozen=True)
class Metric:
    """A metric a task logs every epoch: its name without the split, the direction that is better
    (None where neither is), the range of its values and the splits it is logged for."""

    name: str
    mode: str | None
    low: float = 0.0
    high: float = math.inf
    splits: tuple[str, ...] = FIT_SPLITS

    @property
    def names(self) -> list[str]:
        """As logged: `val/acc`, `train/acc`."""
        return [f"{split}/{self.name}" for split in self.splits]

    def describe_range(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" if math.isfinite(self.high) else f">= {self.low:g}"


def share(name: str, splits: tuple[str, ...] = FIT_SPLITS) -> Metric:
    """A share of examples, pixels or boxes (accuracy, F1, IoU, mAP): in [0, 1], higher is better."""
    return Metric(name, "max", 0.0, 1.0, splits)


def cost(name: str, splits: tuple[str, ...] = FIT_SPLITS) -> Metric:
    """A loss or another cost (cross-entropy, negative ELBO): >= 0, lower is better."""
    return Metric(name, "min", 0.0, math.inf, splits)


def logged_names(metrics: tuple[Metric, ...]) -> dict[str, Metric]:
    """`{"val/acc": Metric(acc), ..., "train/acc": Metric(acc), ...}`: validation's first."""
    names = {name: metric for metric in metrics for name in metric.names}
    return dict(sorted(names.items(), key=lambda item: not item[0].startswith("val/")))
