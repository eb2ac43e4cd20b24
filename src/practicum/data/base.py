"""What every practicum data module offers the run flow: one `loader(split)` behind Lightning's hooks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import lightning.pytorch as pl

SPLITS = ("train", "val", "test")


class SplitDataModule(pl.LightningDataModule):
    """Three named splits, each behind `loader(split, shuffle)`; training shuffles, evaluation never.

    Subclasses implement `loader` and `split_sizes`: the run flow evaluates every split through
    `loader`, and the diagnosis weighs a val/test gap against the sampling noise of the sizes.
    """

    # the kind of examples it provides; the config check refuses a model whose task (or net)
    # declares another kind (Task.problem)
    problem: ClassVar[str] = "classification"

    @classmethod
    def path_hint(cls, args: Mapping[str, Any]) -> str:
        """What to do when `data.path` or `data.root` does not exist (`args`: the config's arguments)."""
        return "check the path"

    def loader(self, split: str, shuffle: bool = False) -> Iterable:
        """Batches of one split ("train", "val" or "test")."""
        raise NotImplementedError(f"{type(self).__name__} must implement loader(split, shuffle)")

    def split_sizes(self) -> dict[str, int]:
        """Examples per split, e.g. {"train": 1257, "val": 270, "test": 270}."""
        raise NotImplementedError(f"{type(self).__name__} must implement split_sizes()")

    def train_dataloader(self) -> Iterable:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> Iterable:
        return self.loader("val")

    def test_dataloader(self) -> Iterable:
        return self.loader("test")
