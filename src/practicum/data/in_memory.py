"""A classification DataModule for data held as tensors: stratified, seeded train/val/test splits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
import torch

from practicum.config.constraints import OpenFraction, PositiveInt, at_least, one_of
from practicum.data.base import SplitDataModule
from practicum.data.batches import TensorBatches
from practicum.data.splits import (
    MIN_TRAIN,
    check_examples,
    rows_named,
    split_off,
    subset,
    val_share,
)
from practicum.errors import UserError

SPLITS = ("train", "val", "test")
NORMALIZE = one_of("per_feature", "global", "none", "auto")


class InMemoryClassificationData(SplitDataModule):
    """Subclasses implement `load_arrays()`; this class splits, normalizes and batches them.

    Normalization statistics come from the training split only, so nothing leaks from val/test.
    """

    def __init__(
        self,
        batch_size: Annotated[int, PositiveInt] = 64,
        val_fraction: Annotated[float, OpenFraction] = 0.15,
        test_fraction: Annotated[float, OpenFraction] = 0.15,
        split_seed: int = 0,
        num_classes: int | str = "auto",
        input_shape: Sequence[int] | str = "auto",
        normalize: Annotated[str, NORMALIZE] = "per_feature",
        train_subset: Annotated[int, at_least(2)] | None = None,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.declared_num_classes = num_classes
        self.declared_input_shape = input_shape
        self.normalize = normalize
        self.train_subset = train_subset
        # the split of each example when the data names them (a split column, separate files);
        # None: the seeded split by val_fraction and test_fraction
        self.assigned: np.ndarray | None = None
        # the origin of each loaded example when it is not its position (splits in files of
        # their own: the row in its own file); `positions` holds each split's positions
        self.example_origins: np.ndarray | None = None
        self.positions: dict[str, np.ndarray] = {}
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.num_classes: int = 0
        self.input_shape: list[int] = []
        self.class_names: list[str] = []
        self.value_range: tuple[float, float] = (0.0, 1.0)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Return features `(n, *shape)`, integer labels `(n,)` and class names."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y, self.class_names = self.load_arrays()
        self._check_examples(x, y)
        self.num_classes = len(self.class_names)
        self.input_shape = list(x.shape[1:])
        self._check_declared()
        parts = self._split(x, y)
        # the raw value range of the training inputs: image files (0..255) map onto it in predict
        self.value_range = float(parts["train"][0].min()), float(parts["train"][0].max())
        mean, std = self._statistics(parts["train"][0])
        self.mean, self.std = mean, std
        self.splits = {
            name: (
                torch.as_tensor((xs - mean) / std, dtype=torch.float32),
                torch.as_tensor(ys, dtype=torch.long),
            )
            for name, (xs, ys) in parts.items()
        }

    def describe(self) -> str:
        return type(self).__name__

    # how a validation split drawn like the test split is given, for the diagnosis's advice
    explicit_splits_hint: str | None = None

    def where(self, indices: Sequence[int]) -> str:
        """Where examples `indices` (of what `load_arrays` returned) are, as the user finds them."""
        return rows_named(list(indices), "examples")

    def label_hint(self) -> str:
        """Said when the labels look wrong (one class, classes of one example): which key picks them."""
        return ""

    def _check_examples(self, x: np.ndarray, y: np.ndarray) -> None:
        """Finite features, enough of them, and labels that can be split (data/splits.py)."""
        if len(x) == 0:
            raise UserError(f"{self.describe()} holds no examples: add some (3 per class at least)")
        if x[0].size == 0:
            raise UserError(f"{self.describe()} has no feature values: add feature columns")
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        if bad.size:
            raise UserError(
                f"{self.describe()} has NaN or inf in {self.where(bad)}: fix or drop them"
            )
        if self.assigned is not None:
            self._check_assigned(y)
            return
        check_examples(
            self.describe(),
            y,
            self.class_names,
            self.val_fraction,
            self.test_fraction,
            self.label_hint(),
        )

    def encode(self, rows: np.ndarray) -> torch.Tensor:
        """New examples (one row of raw feature values each) preprocessed as the training data was."""
        width = int(np.prod(self.input_shape))
        if rows.ndim != 2 or rows.shape[1] != width:
            raise UserError(
                f"each input row needs {width} values (the training features, shape "
                f"{self.input_shape}), got rows of {rows.shape[-1]}"
            )
        x = rows.reshape(len(rows), *self.input_shape)
        return torch.as_tensor((x - self.mean) / self.std, dtype=torch.float32)

    @property
    def takes_images(self) -> bool:
        """Whether the inputs are images of one or three channels, so image files can be encoded."""
        shape = self.input_shape
        return len(shape) == 3 and shape[0] in (1, 3)

    def encode_images(self, paths: Sequence[Path | str]) -> torch.Tensor:
        """Image files as the training images were: resized, their 0..255 pixel values mapped onto
        the training inputs' value range (0..16 for the 8x8 digits), then normalized."""
        from PIL import Image

        channels, height, width = self.input_shape
        low, high = self.value_range
        batch = []
        for path in paths:
            try:
                with Image.open(path) as image:
                    picture = image.convert("L" if channels == 1 else "RGB")
                    pixels = np.asarray(picture.resize((width, height)), dtype=np.float64)
            except OSError as exc:
                raise UserError(f"{path} is not a readable image ({exc})") from exc
            pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
            batch.append(low + pixels / 255.0 * (high - low))
        x = np.stack(batch)
        return torch.as_tensor((x - self.mean) / self.std, dtype=torch.float32)

    def _check_declared(self) -> None:
        declared = self.declared_num_classes
        if declared != "auto" and int(declared) != self.num_classes:
            raise UserError(
                f"data.num_classes={declared} but {self.describe()} has {self.num_classes} classes: "
                f"set data.num_classes={self.num_classes} (or auto)"
            )
        shape = self.declared_input_shape
        if shape != "auto" and list(shape) != self.input_shape:
            raise UserError(
                f"data.input_shape={list(shape)} but {self.describe()} gives inputs of shape "
                f"{self.input_shape}: set data.input_shape={self.input_shape} (or auto)"
            )

    @staticmethod
    def explicit_split_source(named: str | None, name_key: str, separate: dict) -> str | None:
        """Which way the data names its splits: "named" (a column or key), "files" (val and test
        files of their own) or None; giving half of the files, or both ways, is one line."""
        if any(separate.values()) and not all(separate.values()):
            raise UserError(
                "data.val_path and data.test_path go together: give both files (the train split "
                "is data.path), or neither"
            )
        if named is not None and any(separate.values()):
            raise UserError(
                f"data.{name_key} and data.val_path/test_path are two ways to give the splits: "
                "use one"
            )
        return "named" if named is not None else ("files" if all(separate.values()) else None)

    @staticmethod
    def rows_in_own_files(assigned: np.ndarray) -> np.ndarray:
        """Each example's row in its own file, for splits read from one file each, in order."""
        rows = np.empty(len(assigned), dtype=np.int64)
        for split in SPLITS:
            where = assigned == split
            rows[where] = np.arange(int(where.sum()))
        return rows

    def _check_assigned(self, y: np.ndarray) -> None:
        """Splits the data names itself: each one present, and training with two classes."""
        for split in SPLITS:
            if not (self.assigned == split).any():
                raise UserError(
                    f"{self.describe()} names no {split} examples: every split needs some "
                    f"({self.explicit_splits_hint})"
                )
        if (self.assigned == "train").sum() < MIN_TRAIN:
            raise UserError(
                f"{self.describe()} names {(self.assigned == 'train').sum()} train example: "
                f"{MIN_TRAIN} at least (batch norm cannot train on one)"
            )
        if len(np.unique(y[self.assigned == "train"])) < 2:
            raise UserError(
                f"{self.describe()} has one class in its train split: it needs two at least"
            )

    def _split(self, x: np.ndarray, y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        seed = self.split_seed
        if self.assigned is not None:
            train, val, test = (np.flatnonzero(self.assigned == split) for split in SPLITS)
            if self.train_subset is not None:
                train = subset(train, y, self.train_subset, seed)
            return self._parts(x, y, (train, val, test))
        rest, test = split_off(np.arange(len(y)), y, self.test_fraction, seed)
        train, val = split_off(rest, y, val_share(self.val_fraction, self.test_fraction), seed)
        if self.train_subset is not None:
            # fewer training examples, same val/test: how does the error change with the data size?
            train = subset(train, y, self.train_subset, seed)
        return self._parts(x, y, (train, val, test))

    def _parts(self, x: np.ndarray, y: np.ndarray, indices: tuple) -> dict[str, tuple]:
        self.positions = dict(zip(SPLITS, indices, strict=True))
        return {name: (x[i], y[i]) for name, i in self.positions.items()}

    def _statistics(self, x_train: np.ndarray) -> tuple[np.ndarray | float, np.ndarray | float]:
        if self.normalize == "none":
            return 0.0, 1.0
        # auto: one mean and std for all pixels of images, one per feature of vectors
        if self.normalize == "global" or (self.normalize == "auto" and x_train.ndim > 2):
            return float(x_train.mean()), float(x_train.std()) or 1.0
        if self.normalize in ("per_feature", "auto"):
            std = x_train.std(axis=0)
            return x_train.mean(axis=0), np.where(std > 0, std, 1.0)
        raise UserError(
            f"data.normalize={self.normalize!r} is invalid: use per_feature, global or none"
        )

    def split_sizes(self) -> dict[str, int]:
        return {name: len(ys) for name, (_, ys) in self.splits.items()}

    def labels(self, split: str) -> np.ndarray:
        return self.splits[split][1].numpy()

    duplicate_rule = "near"

    def origins(self, split: str) -> list[str]:
        positions = self.positions[split]
        named = positions if self.example_origins is None else self.example_origins[positions]
        return [str(int(v)) for v in named]

    def raw_features(self, split: str) -> np.ndarray:
        """A split's features as loaded, before normalization, one row per example."""
        x = self.splits[split][0].double().numpy()
        return (x * self.std + self.mean).reshape(len(x), -1)

    def example(self, split: str, index: int) -> torch.Tensor:
        return self.splits[split][0][index]

    def loader(self, split: str, shuffle: bool = False) -> TensorBatches:
        seed = int(torch.initial_seed()) % 2**31  # follows `seed=` via seed_everything
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        batches = TensorBatches(
            self.splits[split],
            self.batch_size,
            shuffle=shuffle,
            seed=seed,
            rank=rank,
            world_size=world,
        )
        return batches
