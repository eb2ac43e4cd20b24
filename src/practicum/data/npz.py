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
    """`x`: features `(N, F)` or images `(N, C, H, W)` (or `(N, H, W)`: one channel); `y`: `N` labels. The parent class splits,
    normalizes and batches them, and sets `num_classes` and `input_shape` from what this returns."""

    @classmethod
    def path_hint(cls, args: Mapping[str, Any]) -> str:
        return "point data.path at a .npz file written by numpy.savez(path, x=features, y=labels)"

    def __init__(self, path: str, x_key: str = "x", y_key: str = "y", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.x_key, self.y_key = x_key, y_key

    def describe(self) -> str:
        return f"data.path={str(self.path)!r}"

    def where(self, indices: Sequence[int]) -> str:
        return rows_named(list(indices), f"rows of {self.x_key!r}:")

    def label_hint(self) -> str:
        return f" (does {self.y_key!r} hold class labels, one per example?)"

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Features, labels numbered 0..K-1 in sorted order of their values, and the K class names."""
        x, y = self._read()
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

    def _read(self) -> tuple[np.ndarray, np.ndarray]:
        if not zipfile.is_zipfile(self.path):  # np.load would also take .npy and pickle files
            raise UserError(f"{self.describe()} is not a .npz file: {NPZ_HINT}")
        # allow_pickle=False: loading a data file must not run code
        with np.load(self.path, allow_pickle=False) as arrays:
            missing = [key for key in (self.x_key, self.y_key) if key not in arrays.files]
            if missing:
                raise UserError(
                    f"{self.describe()} has no array {missing[0]!r} (it has "
                    f"{', '.join(arrays.files) or 'none'}): set data.x_key and data.y_key"
                )
            try:
                return arrays[self.x_key].astype(np.float32), arrays[self.y_key]
            except ValueError as exc:  # object arrays (pickled) or features that are not numbers
                raise UserError(f"{self.describe()} does not hold numeric arrays ({exc})") from exc
