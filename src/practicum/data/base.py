"""What every practicum data module offers the run flow: one `loader(split)` behind Lightning's hooks."""

from __future__ import annotations

from collections.abc import Iterable

import lightning.pytorch as pl


class SplitDataModule(pl.LightningDataModule):
    """Subclasses implement `loader(split, shuffle)`; training shuffles, evaluation never does."""

    def loader(self, split: str, shuffle: bool = False) -> Iterable:
        raise NotImplementedError

    def train_dataloader(self) -> Iterable:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> Iterable:
        return self.loader("val")

    def test_dataloader(self) -> Iterable:
        return self.loader("test")
