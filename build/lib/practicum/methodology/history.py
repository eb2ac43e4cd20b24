"""Per-epoch metrics, read back from the CSV logger's metrics.csv."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from practicum.config.goal import Goal

History = dict[int, dict[str, float]]


def read_history(metrics_csv: Path) -> History:
    """`{epoch: {"train/loss": ..., "val/acc": ...}}`, merging the rows each epoch was logged in."""
    history: History = {}
    if not metrics_csv.is_file():
        return history
    with metrics_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if not row.get("epoch"):
                continue
            epoch = int(float(row["epoch"]))
            values = history.setdefault(epoch, {})
            for key, text in row.items():
                if key not in ("epoch", "step") and text not in ("", None):
                    values[key] = float(text)
    return dict(sorted(history.items()))


def best_epoch(history: History, goal: Goal) -> int | None:
    """The first epoch with the best goal metric: the one ModelCheckpoint keeps."""
    best: tuple[int, float] | None = None
    for epoch, values in history.items():
        value = values.get(goal.metric)
        if value is None or not math.isfinite(value):
            continue
        if best is None or goal.better(value, best[1]):
            best = (epoch, value)
    return None if best is None else best[0]


def diverged(history: History) -> bool:
    """Training loss that became NaN or infinite."""
    return any(not math.isfinite(v["train/loss"]) for v in history.values() if "train/loss" in v)
