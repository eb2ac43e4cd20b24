"""A table of your own: a CSV file with a header, numeric feature columns and one label column."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from practicum.data.in_memory import InMemoryClassificationData
from practicum.errors import UserError


class CSVDataModule(InMemoryClassificationData):
    """Labels may be numbers or strings; classes are numbered in sorted order of their labels."""

    @classmethod
    def path_hint(cls, args: Mapping[str, Any]) -> str:
        return "point data.path at a CSV file with a header row, numeric feature columns and a label column"

    def __init__(self, path: str, label_column: str = "label", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.label_column = label_column

    def describe(self) -> str:
        return f"data.path={str(self.path)!r}"

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        if not self.path.is_file():
            raise UserError(f"{self.describe()} is not a file: point data.path at a CSV file")
        with self.path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            raise UserError(
                f"{self.describe()} is empty: it needs a header row and one row per example"
            )
        header, body = rows[0], [r for r in rows[1:] if r]
        if self.label_column not in header:
            raise UserError(
                f"{self.describe()} has no column {self.label_column!r} (columns: {', '.join(header)}): "
                "set data.label_column"
            )
        label_at = header.index(self.label_column)
        labels = [row[label_at] for row in body]
        try:
            features = np.array(
                [[float(v) for i, v in enumerate(row) if i != label_at] for row in body],
                dtype=np.float32,
            ).reshape(len(body), len(header) - 1)
        except ValueError as exc:
            raise UserError(f"{self.describe()} has a non-numeric feature value ({exc})") from exc
        names = sorted(set(labels), key=_label_sort_key)
        index = {name: i for i, name in enumerate(names)}
        return features, np.array([index[v] for v in labels], dtype=np.int64), names


def _label_sort_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)
