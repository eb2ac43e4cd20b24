"""Standard errors of the metrics a task measures on one split: how far the value would move on
another sample of the same size, so the diagnosis can tell a real val/test gap from chance.

A metric that is a mean over examples (accuracy, a loss, the NELBO) gets the standard error of
that mean, std / sqrt(n) of its per-example values (the plug-in std, so a share's is exactly the
binomial sqrt(p (1 - p) / n)). A metric that is not a mean (macro F1, mIoU, mAP) gets the standard
deviation of the metric over bootstrap resamples of the examples (or images). Resamples come from
a generator of their own with a fixed seed: the same checkpoint gets the same errors, and the
global random state is left alone.

Tasks collect per-example values only while testing (`test_step`), so training costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

SEED = 0
# enough for the standard error to be within about 5% of its limit; the metric is cheap to recount
RESAMPLES = 200


def mean_error(values: Tensor) -> float:
    """The standard error of the mean of per-example values."""
    values = values.detach().double().flatten().cpu()
    if len(values) < 2:
        return float("nan")
    return float(values.std(correction=0) / math.sqrt(len(values)))


def share_error(share: float, count: int) -> float:
    """The binomial standard error of a share of `count` independent trials."""
    if count < 2 or not 0.0 <= share <= 1.0:
        return float("nan")
    return math.sqrt(share * (1.0 - share) / count)


def bootstrap_errors(
    count: int,
    statistic: Callable[[Tensor], Tensor],
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Tensor:
    """The standard deviation of `statistic(indices)` (a vector of metric values) over bootstrap
    resamples of `count` examples: each resample draws `count` indices with replacement."""
    if count < 2:
        return torch.tensor([float("nan")])
    generator = torch.Generator().manual_seed(seed)
    values = torch.stack(
        [
            statistic(torch.randint(count, (count,), generator=generator)).double()
            for _ in range(resamples)
        ]
    )
    return values.std(dim=0)


def finite_errors(errors: dict[str, float]) -> dict[str, float]:
    """The errors that could be measured: a split of one example, or a NaN loss, has none."""
    return {name: float(value) for name, value in errors.items() if math.isfinite(value)}


def across_processes(part: Any) -> list[Any]:
    """Every process's `part` under distributed evaluation (each saw a shard of the split);
    `[part]` in a single process. Parts should be on the CPU."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [part]
    world = torch.distributed.get_world_size()
    if world == 1:
        return [part]
    parts: list[Any] = [None] * world
    torch.distributed.all_gather_object(parts, part)
    return parts


def gathered(parts: list[Tensor]) -> Tensor | None:
    """The per-example values of the whole split: this process's parts and every other
    process's, concatenated; None when there are none. Every process must call it."""
    local = [part.detach().cpu() for part in parts]
    everywhere = [part for process in across_processes(local) for part in process]
    return torch.cat(everywhere) if everywhere else None
