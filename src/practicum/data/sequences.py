"""Sequence classification data: digits read row by row, the adding problem, and your own CSV file.

Sequences are held in memory, padded to the longest one; each batch is trimmed to its own longest
sequence. Batches are `(x, y)` with `x` a `(batch, steps, features)` tensor when every sequence
has the same length, else a `(padded, lengths)` pair that the recurrent nets pack.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from torch import Tensor

from practicum.config.constraints import PositiveInt
from practicum.data.batches import TensorBatches
from practicum.data.csv_table import column, label_sort_key, read_labels, read_numbers, read_rows
from practicum.data.in_memory import InMemoryClassificationData
from practicum.data.splits import rows_named
from practicum.errors import UserError


class SequenceData(InMemoryClassificationData):
    """Subclasses implement `load_sequences()`: a list of `(steps, features)` arrays and their labels.

    Splitting, per-feature normalization (statistics over the valid steps of the training split)
    and the declared-shape checks come from InMemoryClassificationData.
    """

    problem = "sequence_classification"
    duplicate_rule = "exact"  # a sequence shared between splits is the same steps, value for value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lengths: dict[str, Tensor] = {}
        self.variable_length = False

    def load_sequences(self) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
        raise NotImplementedError

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Pad to the longest sequence; the length rides along as the last feature of step 0."""
        sequences, labels, names = self.load_sequences()
        if not sequences:
            raise UserError(f"{self.describe()} holds no sequences: check the file")
        lengths = np.array([len(s) for s in sequences])
        self.variable_length = bool(lengths.min() != lengths.max())
        features = sequences[0].shape[1]
        padded = np.zeros((len(sequences), lengths.max(), features + 1), dtype=np.float32)
        for i, sequence in enumerate(sequences):
            padded[i, : len(sequence), :features] = sequence
            padded[i, 0, features] = len(sequence)
        return padded, labels, names

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        normalize, self.normalize = self.normalize, "none"  # padding must not enter the statistics
        super().setup(stage)
        self.normalize = normalize
        self.input_shape = [self.input_shape[0], self.input_shape[1] - 1]
        lengths = {name: x[:, 0, -1].long() for name, (x, _) in self.splits.items()}
        mean, std = self._step_statistics(self.splits["train"][0][..., :-1], lengths["train"])
        for name, (x, y) in self.splits.items():
            valid = _valid_steps(lengths[name], x.shape[1])[..., None]
            self.splits[name] = (((x[..., :-1] - mean) / std) * valid, y)
        self.lengths = lengths

    def _check_declared(self) -> None:
        """The declared shape counts the real features, not the length column."""
        shape, self.declared_input_shape = self.declared_input_shape, "auto"
        super()._check_declared()
        self.declared_input_shape = shape
        real = [self.input_shape[0], self.input_shape[1] - 1]
        if shape != "auto" and list(shape) != real:
            raise UserError(
                f"data.input_shape={list(shape)} but {self.describe()} gives sequences of shape "
                f"{real}: set data.input_shape={real} (or auto)"
            )

    def _step_statistics(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if self.normalize == "none":
            return torch.zeros(()), torch.ones(())
        steps = x[_valid_steps(lengths, x.shape[1])]  # (valid steps, features)
        if self.normalize == "global":
            return steps.mean(), steps.std().clamp_min(1e-8)
        if self.normalize in ("per_feature", "auto"):
            std = steps.std(dim=0)
            return steps.mean(dim=0), torch.where(std > 0, std, torch.ones_like(std))
        raise UserError(
            f"data.normalize={self.normalize!r} is invalid: use per_feature, global or none"
        )

    def loader(self, split: str, shuffle: bool = False) -> SequenceBatches:
        seed = int(torch.initial_seed()) % 2**31  # follows `seed=` via seed_everything
        x, y = self.splits[split]
        batches = TensorBatches((x, self.lengths[split], y), self.batch_size, shuffle, seed=seed)
        if shuffle:
            if getattr(self, "_shuffle_state", None) is not None:  # resuming: continue the order
                batches.generator.set_state(self._shuffle_state)
                self._shuffle_state = None
            self._shuffled = batches  # its generator state goes into checkpoints (state_dict)
        return SequenceBatches(batches, self.variable_length)


class SequenceBatches:
    """`(x, y)` batches, or `((padded, lengths), y)` trimmed to the batch's longest sequence."""

    def __init__(self, batches: TensorBatches, variable_length: bool) -> None:
        self.batches = batches
        self.variable_length = variable_length

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[Any, Tensor]]:
        for x, lengths, y in self.batches:
            if self.variable_length:
                yield (x[:, : int(lengths.max())], lengths), y
            else:
                yield x, y


def _valid_steps(lengths: Tensor, steps: int) -> Tensor:
    return torch.arange(steps)[None, :] < lengths[:, None]


class DigitsRows(SequenceData):
    """sklearn's 8x8 digits read top to bottom: 8 steps of 8 pixel values, 10 classes."""

    def describe(self) -> str:
        return "data=digits_rows"

    def load_sequences(self) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = bunch.images.astype(np.float32)
        return list(images), bunch.target.astype(np.int64), [str(n) for n in bunch.target_names]


class AddingProblem(SequenceData):
    """The adding problem (Hochreiter & Schmidhuber 1997) as classification, with varying lengths.

    Each step holds a random value in [0, 1) and a marker; exactly two steps are marked, one in
    each half. The label says whether the two marked values add up to more than 1, so the net must
    remember the first value over many steps of noise.
    """

    def __init__(
        self,
        num_sequences: Annotated[int, PositiveInt] = 2000,
        min_length: Annotated[int, PositiveInt] = 20,
        max_length: Annotated[int, PositiveInt] = 40,
        generator_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 2 <= min_length <= max_length:
            raise UserError(
                f"data.min_length={min_length} and max_length={max_length}: need 2 <= min_length <= max_length"
            )
        self.num_sequences = num_sequences
        self.min_length = min_length
        self.max_length = max_length
        self.generator_seed = generator_seed

    def describe(self) -> str:
        return "data=adding"

    def load_sequences(self) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
        rng = np.random.default_rng(self.generator_seed)
        sequences, labels = [], []
        for _ in range(self.num_sequences):
            length = int(rng.integers(self.min_length, self.max_length + 1))
            values = rng.random(length).astype(np.float32)
            markers = np.zeros(length, dtype=np.float32)
            half = length // 2
            first, second = rng.integers(0, half), rng.integers(half, length)
            markers[[first, second]] = 1.0
            sequences.append(np.stack([values, markers], axis=1))
            labels.append(int(values[first] + values[second] > 1.0))
        return sequences, np.array(labels, dtype=np.int64), ["sum<=1", "sum>1"]


class CSVSequences(SequenceData):
    """Your own sequences: a CSV file with one row per time step.

    Columns: a sequence id, a label, and numeric feature columns (all other columns). The rows of
    one sequence share its id and label and appear in time order; lengths may differ.
    """

    @classmethod
    def path_hint(cls, args: Mapping[str, Any]) -> str:
        return (
            "point data.path at a CSV file with a header, an id column, a label column and "
            "numeric feature columns, one row per time step"
        )

    def __init__(
        self, path: str, id_column: str = "id", label_column: str = "label", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.id_column = id_column
        self.label_column = label_column
        self.ids: list[str] = []  # the id of each sequence

    def describe(self) -> str:
        return f"data.path={str(self.path)!r}"

    def where(self, indices: Sequence[int]) -> str:
        return rows_named([repr(self.ids[i]) for i in indices], "sequences")

    def origins(self, split: str) -> list[str]:
        """A sequence is named by its id."""
        return [self.ids[int(i)] for i in self.positions[split]]

    def label_hint(self) -> str:
        return f" (is data.label_column={self.label_column} the column of class labels?)"

    def load_sequences(self) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
        what = self.describe()
        header, rows = read_rows(self.path, what, "one row per time step")
        id_at = column(header, self.id_column, "id_column", what)
        label_at = column(header, self.label_column, "label_column", what)
        feature_at = [i for i in range(len(header)) if i not in (id_at, label_at)]
        if not feature_at:
            raise UserError(
                f"{what} has no feature columns besides {self.id_column!r} and "
                f"{self.label_column!r}: add the numeric columns the model learns from"
            )
        labels_of_rows = read_labels(rows, label_at, what)
        values = read_numbers(rows, feature_at, header, what)
        steps: dict[str, list[np.ndarray]] = {}
        labels: dict[str, str] = {}
        for (line, row), label, step in zip(rows, labels_of_rows, values, strict=True):
            key = row[id_at].strip()
            if not key:
                raise UserError(
                    f"{what} line {line} has no {self.id_column!r}: fill it in or drop the row"
                )
            if labels.setdefault(key, label) != label:
                raise UserError(
                    f"{what} line {line}: sequence {key!r} has labels {labels[key]!r} and {label!r}; "
                    "every row of a sequence needs the same label"
                )
            steps.setdefault(key, []).append(step)
        names = sorted(set(labels.values()), key=label_sort_key)
        index = {name: i for i, name in enumerate(names)}
        self.ids = list(steps)
        sequences = [np.stack(values) for values in steps.values()]
        targets = np.array([index[labels[key]] for key in steps], dtype=np.int64)
        return sequences, targets, names
