"""Batches sliced straight from in-memory tensors.

For data that fits in memory (all the bundled datasets) a DataLoader's per-sample indexing and
collation cost more than the model's forward pass; slicing whole tensors does not.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


class TensorBatches:
    """An iterable of `(x, y)` batches over tensors; reshuffled each pass from its own seeded generator."""

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def num_samples(self) -> int:
        return len(self.tensors[0])

    def __len__(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        tensors = self.tensors
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=self.generator)
            tensors = tuple(t[order] for t in tensors)
        for i in range(len(self)):
            start = i * self.batch_size
            yield tuple(t[start : start + self.batch_size] for t in tensors)
