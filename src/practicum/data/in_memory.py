"""A classification DataModule for data held as tensors: stratified, seeded train/val/test splits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from practicum.constraints import OpenFraction, PositiveInt
from practicum.data.base import SplitDataModule
from practicum.data.batches import TensorBatches
from practicum.errors import UserError

SPLITS = ("train", "val", "test")


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
        normalize: str = "per_feature",
        train_subset: Annotated[int, PositiveInt] | None = None,
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
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._shuffled: TensorBatches | None = None
        self._shuffle_state: torch.Tensor | None = None
        self.num_classes: int = 0
        self.input_shape: list[int] = []
        self.class_names: list[str] = []

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Return features `(n, *shape)`, integer labels `(n,)` and class names."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y, self.class_names = self.load_arrays()
        if len(x) == 0:
            raise UserError(f"{self.describe()} holds no examples: check the file")
        self.num_classes = len(self.class_names)
        self.input_shape = list(x.shape[1:])
        self._check_declared()
        parts = self._split(x, y)
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

    def _split(self, x: np.ndarray, y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        counts = np.bincount(y, minlength=self.num_classes)
        stratify = y if counts.min() >= 3 else None  # stratifying needs a few examples per class
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=self.test_fraction, random_state=self.split_seed, stratify=stratify
        )
        val_share = self.val_fraction / (1.0 - self.test_fraction)
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest,
            y_rest,
            test_size=val_share,
            random_state=self.split_seed,
            stratify=y_rest if stratify is not None else None,
        )
        if self.train_subset is not None and self.train_subset < len(y_train):
            # fewer training examples, same val/test: how does the error change with the data size?
            x_train, _, y_train, _ = train_test_split(
                x_train,
                y_train,
                train_size=self.train_subset,
                random_state=self.split_seed,
                stratify=y_train if self.train_subset >= self.num_classes else None,
            )
        return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}

    def _statistics(self, x_train: np.ndarray) -> tuple[np.ndarray | float, np.ndarray | float]:
        if self.normalize == "none":
            return 0.0, 1.0
        if self.normalize == "global":
            return float(x_train.mean()), float(x_train.std()) or 1.0
        if self.normalize == "per_feature":
            std = x_train.std(axis=0)
            return x_train.mean(axis=0), np.where(std > 0, std, 1.0)
        raise UserError(
            f"data.normalize={self.normalize!r} is invalid: use per_feature, global or none"
        )

    def split_sizes(self) -> dict[str, int]:
        return {name: len(ys) for name, (_, ys) in self.splits.items()}

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
        if shuffle:
            if self._shuffle_state is not None:  # resuming: continue the saved order of batches
                batches.generator.set_state(self._shuffle_state)
                self._shuffle_state = None
            self._shuffled = batches
        return batches

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: where the training batches' shuffling stands."""
        return {"shuffle_state": self._shuffled.generator.get_state()} if self._shuffled else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._shuffle_state = state_dict.get("shuffle_state")
