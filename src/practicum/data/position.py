"""Where a training pass stands, so that a run saved in the middle of an epoch resumes at its batch.

A shuffled training loader makes one pass after another over its split, each in an order drawn at
the pass's start from the loader's own seeded generator. Its position is that generator's state at
the start of the current pass, the number of passes before it, and how many batches of it the
training loop has finished. A loader given the position draws the same order and leaves out those
batches by index, without loading them.

An example's random augmentation is seeded by (seed, pass, index), not by the worker process that
happens to load it: with `num_workers > 0` the resumed run sees the same augmented images as the
run that was never stopped. The sampler hands each index to the dataset as a `SeededIndex`, and the
dataset draws its augmentation inside `seeded(index)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.data import Sampler, get_worker_info

MIX = 0x9E3779B97F4A7C15  # spreads consecutive indices over the seed space
SEED_BITS = 2**63 - 1


class SeededIndex(int):
    """An example's index that carries the seed of its augmentation in this pass."""

    seed: int

    def __new__(cls, index: int, seed: int) -> SeededIndex:
        value = super().__new__(cls, index)
        value.seed = seed
        return value

    def __reduce__(self) -> tuple[Any, ...]:  # to a loader worker and back, seed included
        return SeededIndex, (int(self), self.seed)


@contextmanager
def seeded(index: Any) -> Iterator[None]:
    """torch's random numbers drawn inside come from the index's seed (a plain index: unchanged).
    A loader worker's generator serves only the data, so it is reseeded; in the training process
    the generator is put back afterwards, so dropout and shuffling go on as they would."""
    seed = getattr(index, "seed", None)
    if seed is None:
        yield
    elif get_worker_info() is not None:
        torch.manual_seed(seed)
        yield
    else:  # the CPU generator only: a GPU's (dropout there) is neither reseeded nor saved
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield


def pass_seed(seed: int, passes: int) -> int:
    """The base of one pass's per-example seeds."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + passes)
    return int(torch.randint(0, SEED_BITS, (), generator=generator))


class Position:
    """What a shuffled training loader records so that it can start again where it stood."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.passes = 0  # passes started
        self.start_state: torch.Tensor | None = None
        self.skip = 0  # batches of the next pass to leave out (resuming mid-pass)

    def start_pass(self, size: int) -> tuple[torch.Tensor, int, int]:
        """The order of the pass that starts now, its number, and the batches to leave out."""
        self.start_state = self.generator.get_state()
        order = torch.randperm(size, generator=self.generator)
        number, skip = self.passes, self.skip
        self.passes += 1
        self.skip = 0
        return order, number, skip

    def state(self, batches_done: int | None) -> dict[str, Any]:
        """`batches_done` of the current pass finished (None: the pass is over, or none began)."""
        if batches_done is None or self.start_state is None:
            return {"generator": self.generator.get_state(), "passes": self.passes, "skip": 0}
        return {"generator": self.start_state, "passes": self.passes - 1, "skip": batches_done}

    def restore(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.passes, self.skip = int(state["passes"]), int(state["skip"])


class ShuffledPasses(Sampler[int]):
    """A training DataLoader's sampler: a new seeded order each pass, resumable mid-pass, each
    index carrying its augmentation seed (`SeededIndex`)."""

    def __init__(self, size: int, seed: int, batch_size: int) -> None:
        self.size, self.batch_size = size, batch_size
        self.position = Position(seed)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        order, number, skip = self.position.start_pass(self.size)
        base = pass_seed(self.position.seed, number)
        for index in order[skip * self.batch_size :].tolist():
            yield SeededIndex(index, (base ^ (index * MIX)) & SEED_BITS)


def batches_done(trainer: Any) -> int | None:
    """How many batches of the current training epoch are finished, when the fit stands inside
    one, in a training step or in a validation within the epoch (None at an epoch's start or end,
    or outside a fit)."""
    if trainer is None or getattr(trainer.state, "fn", None) != "fit":
        return None
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    total = trainer.num_training_batches
    if 0 < done < total:
        return int(done)
    return None
