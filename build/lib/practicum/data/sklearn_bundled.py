"""Datasets that ship inside scikit-learn: real data, no download."""

from __future__ import annotations

from typing import Any

import numpy as np

from practicum.data.in_memory import InMemoryClassificationData
from practicum.errors import UserError

LOADERS = {"digits": "load_digits", "wine": "load_wine", "breast_cancer": "load_breast_cancer"}


class SklearnBundledDataModule(InMemoryClassificationData):
    """`digits` (1x8x8 images, 10 classes), `wine` (13 features, 3 classes), `breast_cancer` (30, 2)."""

    def __init__(self, dataset: str = "digits", as_images: bool = False, **kwargs: Any) -> None:
        if dataset not in LOADERS:
            raise UserError(
                f"data.dataset={dataset!r} is not a bundled dataset: use one of {', '.join(LOADERS)}"
            )
        kwargs.setdefault("normalize", "global" if as_images else "per_feature")
        super().__init__(**kwargs)
        self.dataset = dataset
        self.as_images = as_images

    def describe(self) -> str:
        return f"data={self.dataset}"

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, LOADERS[self.dataset])()
        x = bunch.images[:, None, :, :] if self.as_images else bunch.data
        names = [str(n) for n in bunch.target_names]
        return x.astype(np.float32), bunch.target.astype(np.int64), names
