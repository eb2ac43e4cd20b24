"""What detection and segmentation data share: per-image targets, splits, and batching.

A detection batch is `(images, targets)`: a list of float images `(3, H, W)` in [0, 1] and a list of
`{"boxes": (N, 4) xyxy pixels, "labels": (N,) int64}` dicts, the format torchvision's detectors
take. A segmentation batch is `(images, masks)`: stacked images `(B, 3, H, W)` in [0, 1] and masks
`(B, H, W)` of class ids (255 = ignore). Class 0 is the background in both, and counts in
`num_classes` (torchvision's convention).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import torch
from torch.utils.data import DataLoader, Dataset

from practicum.config.constraints import NonNegativeInt, PositiveInt
from practicum.data.base import SplitDataModule, lone_last_batch
from practicum.data.position import ShuffledPasses, seeded
from practicum.errors import UserError

PROBLEMS = ("detection", "segmentation")


class Examples(Dataset):
    """`load(i)` for i in range(count): examples built (or read from disk) on demand."""

    def __init__(self, load: Callable[[int], Any], count: int) -> None:
        self.load, self.count = load, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < self.count:
            raise IndexError(i)
        with seeded(i):  # augmentation by (seed, pass, example), whichever worker loads it
            return self.load(i)


def as_lists(batch: list[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    """Detection images differ in size and box count: keep them as lists."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


class DenseData(SplitDataModule):
    """Subclasses implement `load_splits()` returning `{"train"|"val"|"test": Dataset}`."""

    problem = "detection"

    def __init__(
        self,
        batch_size: Annotated[int, PositiveInt] = 8,
        image_size: Annotated[int, PositiveInt] = 128,
        num_classes: int | str = "auto",
        input_shape: Sequence[int] | str = "auto",
        num_workers: Annotated[int, NonNegativeInt] = 0,
    ) -> None:
        super().__init__()
        if self.problem not in PROBLEMS:
            raise ValueError(f"unknown problem {self.problem}")
        self.batch_size, self.image_size, self.num_workers = batch_size, image_size, num_workers
        self.declared = {"num_classes": num_classes, "input_shape": input_shape}
        self.class_names: list[str] = []
        self.num_classes = 0
        self.input_shape = [3, image_size, image_size]
        self.splits: dict[str, Dataset] = {}

    def load_splits(self) -> dict[str, Dataset]:
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.splits = self.load_splits()
        self.num_classes = len(self.class_names)
        found = {"num_classes": self.num_classes, "input_shape": self.input_shape}
        for key, declared in self.declared.items():
            if declared == "auto":
                continue
            value = int(declared) if key == "num_classes" else list(declared)
            if value != found[key]:
                raise UserError(
                    f"data.{key}={value} but {self.describe()} has {found[key]} "
                    f"(background included): set data.{key}={found[key]} (or auto)"
                )
        for name, dataset in self.splits.items():
            if len(dataset) == 0:
                raise UserError(f"{self.describe()} has no {name} images: add images to that split")
        if len(self.splits["train"]) < 2:  # batch norm cannot train on a batch of one
            raise UserError(
                f"{self.describe()} has 1 train image: add images to train on (2 at least)"
            )

    def split_sizes(self) -> dict[str, int]:
        return {name: len(self.splits[name]) for name in ("train", "val", "test")}

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        seed = int(torch.initial_seed()) % 2**31  # follows `seed=` via seed_everything
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size,
            sampler=(
                ShuffledPasses(len(self.splits[split]), seed, self.batch_size) if shuffle else None
            ),
            drop_last=lone_last_batch(len(self.splits[split]), self.batch_size, shuffle),
            # the workers' base seed, drawn here and not from the training process's generator
            # (which would then differ after a resume, where validation starts its workers later)
            generator=torch.Generator().manual_seed(seed),
            collate_fn=as_lists if self.problem == "detection" else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
