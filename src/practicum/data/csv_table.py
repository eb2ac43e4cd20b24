"""A table of your own: a CSV file with a header, numeric feature columns and one label column.

The readers here serve CSV sequences too (sequences.py): a cell that is empty, NaN or inf, a word
where a number belongs, a row of the wrong length or a missing label is one line naming the file
and the lines, before anything trains.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from practicum.data.in_memory import InMemoryClassificationData
from practicum.data.splits import rows_named
from practicum.errors import UserError

Row = tuple[int, list[str]]  # (line number in the file, cells)


class CSVDataModule(InMemoryClassificationData):
    """Labels may be numbers or strings; classes are numbered in sorted order of their labels."""

    @classmethod
    def path_hint(cls, args: Mapping[str, Any]) -> str:
        return "point data.path at a CSV file with a header row, numeric feature columns and a label column"

    explicit_splits_hint = (
        "a split column (data.split_column=<column> holding train, val or test on each row), or "
        "files of their own (data.val_path=<csv> data.test_path=<csv>)"
    )

    def __init__(
        self,
        path: str,
        label_column: str = "label",
        split_column: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.label_column = label_column
        self.split_column = split_column
        self.val_path = None if val_path is None else Path(val_path)
        self.test_path = None if test_path is None else Path(test_path)
        self.lines: list[int] = []  # the file's line of each example

    def describe(self) -> str:
        return f"data.path={str(self.path)!r}"

    def where(self, indices: Sequence[int]) -> str:
        return rows_named([self.lines[i] for i in indices], "lines")

    def label_hint(self) -> str:
        return f" (is data.label_column={self.label_column} the column of class labels?)"

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        header, rows = read_rows(self.path, self.describe(), "one row per example")
        label_at = column(header, self.label_column, "label_column", self.describe())
        skip = {label_at}
        separate = {"val": self.val_path, "test": self.test_path}
        source = self.explicit_split_source(self.split_column, "split_column", separate)
        if source == "named":
            split_at = column(header, self.split_column, "split_column", self.describe())
            skip.add(split_at)
            self.assigned = read_split_names(rows, split_at, self.describe())
        elif source == "files":
            assigned = ["train"] * len(rows)
            for split, path in separate.items():
                what = f"data.{split}_path={str(path)!r}"
                other_header, other_rows = read_rows(path, what, "one row per example")
                if other_header != header:
                    raise UserError(
                        f"{what} has the columns {other_header}, {self.describe()} has {header}: "
                        "give every split the same header"
                    )
                rows = rows + other_rows
                assigned += [split] * len(other_rows)
            self.assigned = np.array(assigned)
            self.example_origins = self.rows_in_own_files(self.assigned)
        feature_at = [i for i in range(len(header)) if i not in skip]
        if not feature_at:
            raise UserError(
                f"{self.describe()} has no feature columns besides {self.label_column!r}: "
                "add the numeric columns the model learns from"
            )
        labels = read_labels(rows, label_at, self.describe())
        features = read_numbers(rows, feature_at, header, self.describe())
        self.lines = [line for line, _ in rows]
        names = sorted(set(labels), key=label_sort_key)
        index = {name: i for i, name in enumerate(names)}
        return features, np.array([index[v] for v in labels], dtype=np.int64), names


SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def read_split_names(rows: list[Row], at: int, what: str) -> np.ndarray:
    """The split of each row: train, val (or valid, validation) or test."""
    names = []
    for line, row in rows:
        name = SPLIT_NAMES.get(row[at].strip().lower())
        if name is None:
            raise UserError(
                f"{what} line {line} has split {row[at]!r}: use train, val or test in the split column"
            )
        names.append(name)
    return np.array(names)


def read_rows(path: Path, what: str, layout: str) -> tuple[list[str], list[Row]]:
    """The header and the non-blank rows with their line numbers; every row as long as the header."""
    if not path.is_file():
        raise UserError(f"{what} is not a file: point it at a CSV file")
    try:
        # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            lines = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{what} is not a readable CSV file ({exc}): save it as UTF-8 CSV") from exc
    if not lines:
        raise UserError(f"{what} is empty: it needs a header row and {layout}")
    (_, header), rows = lines[0], lines[1:]
    header = [name.strip() for name in header]
    if len(header) == 1 and any(mark in header[0] for mark in ";\t|"):
        mark = next(m for m in ";\t|" if m in header[0])
        raise UserError(
            f"{what} has one column, {header[0]!r}: its values look separated by {mark!r}, not "
            "commas; save it as comma-separated CSV"
        )
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise UserError(
            f"{what} has more than one column named {', '.join(map(repr, twice))}: give every "
            "column its own name in the header"
        )
    for line, row in rows:
        if len(row) != len(header):
            raise UserError(
                f"{what} line {line} has {len(row)} values but the header has {len(header)} "
                f"columns: make every row as long as the header"
            )
    return header, rows


def column(header: list[str], name: str, key: str, what: str) -> int:
    if name not in header:
        raise UserError(
            f"{what} has no column {name!r} (columns: {', '.join(header)}): set data.{key}"
        )
    return header.index(name)


def read_labels(rows: list[Row], at: int, what: str) -> list[str]:
    labels = [row[at].strip() for _, row in rows]
    empty = [line for (line, _), label in zip(rows, labels, strict=True) if not label]
    if empty:
        raise UserError(
            f"{what} has no label in {rows_named(empty, 'lines')}: fill them or drop those rows"
        )
    return labels


def read_numbers(rows: list[Row], columns: list[int], header: list[str], what: str) -> np.ndarray:
    """The `columns` of every row as float32; a word is refused where it is, then empty, NaN or
    inf values are refused with the lines that hold them."""
    values = np.empty((len(rows), len(columns)), dtype=np.float32)
    for r, (line, row) in enumerate(rows):
        for c, at in enumerate(columns):
            cell = row[at].strip()
            try:
                values[r, c] = float(cell) if cell else math.nan
            except ValueError:
                raise UserError(
                    f"{what} line {line}, column {header[at]!r} holds {cell!r}, not a number: "
                    "feature columns must be numeric"
                ) from None
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        missing = [rows[i][0] for i in bad]
        raise UserError(
            f"{what} has empty, NaN or inf values in {rows_named(missing, 'lines')}: "
            "fix or drop them"
        )
    return values


def label_sort_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)
