"""The goal: an error metric, its direction and the value that is good enough."""

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
