"""Your own arrays: a NumPy .npz file holding the features and the labels of every example."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from practicum.data.in_memory import InMemoryClassificationData
from practicum.data.splits import rows_named
from practicum.errors import UserError

NPZ_HINT = "write one with numpy.savez(path, x=features, y=labels)"


class NpzDataModule(InMemoryClassificationData):
    """`x`: features `(N, F)` or images `(N, C, H, W)` (`(N, H, W)`: one channel); `y`: `N` labels.
    The parent class splits, normalizes and batches them, and sets `num_classes` and `input_shape`
    from what this returns."""

    @classmethod
    def path_hint(cls, args: Mapping[str, Any]) -> str:
        return "point data.path at a .npz file written by numpy.savez(path, x=features, y=labels)"

    explicit_splits_hint = (
        "an array naming each example's split (data.split_key=<key> holding train, val or test), "
        "or files of their own (data.val_path=<npz> data.test_path=<npz>)"
    )

    def __init__(
        self,
        path: str,
        x_key: str = "x",
        y_key: str = "y",
        split_key: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.x_key, self.y_key = x_key, y_key
        self.split_key = split_key
        self.val_path = None if val_path is None else Path(val_path)
        self.test_path = None if test_path is None else Path(test_path)

    def describe(self) -> str:
        return f"data.path={str(self.path)!r}"

    def where(self, indices: Sequence[int]) -> str:
        return rows_named(list(indices), f"rows of {self.x_key!r}:")

    def label_hint(self) -> str:
        return f" (does {self.y_key!r} hold class labels, one per example?)"

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Features, labels numbered 0..K-1 in sorted order of their values, and the K class names."""
        x, y = self._read(self.path, self.describe())
        separate = {"val": self.val_path, "test": self.test_path}
        source = self.explicit_split_source(self.split_key, "split_key", separate)
        if source == "named":
            self.assigned = self._split_names(len(y))
        elif source == "files":
            assigned = ["train"] * len(y)
            for split, path in separate.items():
                xs, ys = self._read(path, f"data.{split}_path={str(path)!r}")
                if xs.shape[1:] != x.shape[1:]:
                    raise UserError(
                        f"data.{split}_path={str(path)!r} holds inputs of shape {xs.shape[1:]}, "
                        f"{self.describe()} of shape {x.shape[1:]}: give every split the same shape"
                    )
                x, y = np.concatenate([x, xs]), np.concatenate([y, ys])
                assigned += [split] * len(ys)
            self.assigned = np.array(assigned)
            self.example_origins = self.rows_in_own_files(self.assigned)
        if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
            raise UserError(
                f"{self.describe()} has {self.x_key} of shape {x.shape} and {self.y_key} of shape "
                f"{y.shape}: need (N, features...) and (N,), one class label per example"
            )
        if x.ndim == 3:  # (N, height, width): images of one channel
            x = x[:, None]
        if x.ndim > 4:
            raise UserError(
                f"{self.describe()} has {self.x_key} of shape {x.shape}: need (N, features) "
                "vectors or (N, channels, height, width) images"
            )
        if y.dtype.kind == "f":
            bad = np.flatnonzero(~np.isfinite(y))
            if bad.size:
                raise UserError(
                    f"{self.describe()} has NaN or inf in "
                    f"{rows_named(list(bad), f'rows of {self.y_key!r}:')}: fix or drop them"
                )
        names, labels = np.unique(y, return_inverse=True)
        return x, labels.astype(np.int64), [str(name) for name in names]

    def _split_names(self, count: int) -> np.ndarray:
        with np.load(self.path, allow_pickle=False) as arrays:
            if self.split_key not in arrays.files:
                raise UserError(
                    f"{self.describe()} has no array {self.split_key!r} (data.split_key): it has "
                    f"{', '.join(arrays.files)}"
                )
            names = np.char.lower(arrays[self.split_key].astype(str))
        if names.shape != (count,):
            raise UserError(
                f"{self.describe()} has {self.split_key} of shape {names.shape}: one split name "
                f"per example, ({count},)"
            )
        names = np.where(np.isin(names, ("valid", "validation")), "val", names)
        bad = np.flatnonzero(~np.isin(names, ("train", "val", "test")))
        if bad.size:
            raise UserError(
                f"{self.describe()} names the split {names[bad[0]]!r} in "
                f"{rows_named(list(bad), f'rows of {self.split_key!r}:')}: use train, val or test"
            )
        return names

    def _read(self, path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
        if not zipfile.is_zipfile(path):  # np.load would also take .npy and pickle files
            raise UserError(f"{what} is not a .npz file: {NPZ_HINT}")
        # allow_pickle=False: loading a data file must not run code
        with np.load(path, allow_pickle=False) as arrays:
            missing = [key for key in (self.x_key, self.y_key) if key not in arrays.files]
            if missing:
                raise UserError(
                    f"{what} has no array {missing[0]!r} (it has "
                    f"{', '.join(arrays.files) or 'none'}): set data.x_key and data.y_key"
                )
            try:
                return arrays[self.x_key].astype(np.float32), arrays[self.y_key]
            except ValueError as exc:  # object arrays (pickled) or features that are not numbers
                raise UserError(f"{what} does not hold numeric arrays ({exc})") from exc
