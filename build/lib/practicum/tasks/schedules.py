"""Learning-rate schedules torch does not ship as one class."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(
    optimizer: Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.05,
    start_factor: float = 0.01,
    min_lr_ratio: float = 0.0,
) -> LambdaLR:
    """Linear warm-up over the first `warmup_fraction` of steps, then cosine decay to `min_lr_ratio`."""
    warmup = max(1, int(round(warmup_fraction * total_steps)))
    decay = max(1, total_steps - warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return start_factor + (1.0 - start_factor) * step / warmup
        progress = min(1.0, (step - warmup) / decay)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
