"""Dropout that stays on at evaluation: F.dropout with training=True."""

from __future__ import annotations

import math

from torch import Tensor, nn
from torch.nn import functional as F


class EvalDropout(nn.Module):
    """The healthy twin: dropout follows the module's mode."""

    def __init__(self, in_shape: list[int], num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = nn.Linear(math.prod(in_shape), hidden)
        self.out = nn.Linear(hidden, num_classes)

    def dropout(self, x: Tensor) -> Tensor:
        return F.dropout(x, p=0.5, training=self.training)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.dropout(F.relu(self.hidden(x.flatten(1)))))


class AlwaysDropout(EvalDropout):
    """The bug: training=True, so every prediction is a random draw."""

    def dropout(self, x: Tensor) -> Tensor:
        return F.dropout(x, p=0.5, training=True)
