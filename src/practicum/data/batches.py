"""Batches sliced straight from in-memory tensors.

For data that fits in memory (all the bundled datasets) a DataLoader's per-sample indexing and
collation cost more than the model's forward pass; slicing whole tensors does not.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from practicum.data.position import Position


class TensorBatches:
    """An iterable of `(x, y)` batches over tensors; reshuffled each pass from its own seeded
    generator, and resumable in the middle of a pass (`position`, data/position.py)."""

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.position = Position(seed)
        self.generator = self.position.generator
        # under DDP each process takes every world_size-th example of the (same) order; training
        # shards are cut to equal sizes so every process runs the same number of steps
        self.rank, self.world_size = rank, world_size

    @property
    def num_samples(self) -> int:
        total = len(self.tensors[0])
        if self.world_size == 1:
            return total
        if self.shuffle:
            return total // self.world_size
        return len(range(self.rank, total, self.world_size))

    def __len__(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        # a shuffled (training) batch of one example is left out: batch norm cannot train on it
        lone = self.shuffle and rest == 1 and full > 0
        return full if self.drop_last or rest == 0 or lone else full + 1

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        tensors, skip = self.tensors, 0
        if self.shuffle or self.world_size > 1:
            total = len(tensors[0])
            if self.shuffle:
                order, _, skip = self.position.start_pass(total)
            else:
                order = torch.arange(total)
            order = order[self.rank :: self.world_size][: self.num_samples]
            tensors = tuple(t[order] for t in tensors)
        for i in range(skip, len(self)):
            start = i * self.batch_size
            yield tuple(t[start : start + self.batch_size] for t in tensors)
