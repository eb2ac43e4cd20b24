"""Inputs on a scale the net cannot use: pixel values in 0..1600, never normalized."""

from __future__ import annotations

from typing import Any

import numpy as np

from practicum.data.sklearn_bundled import SklearnBundledDataModule


class ScaledDigits(SklearnBundledDataModule):
    """The healthy twin: the digits, normalized (statistics of the training split)."""

    def __init__(self, normalize: str = "global", **kwargs: Any) -> None:
        super().__init__(dataset="digits", as_images=True, normalize=normalize, **kwargs)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        x, y, names = super().load_arrays()
        return x * 100.0, y, names  # a sensor's raw units


class RawDigits(ScaledDigits):
    """The bug: normalization off, so the net sees values in the thousands."""

    def __init__(self, normalize: str = "none", **kwargs: Any) -> None:
        super().__init__(normalize=normalize, **kwargs)
