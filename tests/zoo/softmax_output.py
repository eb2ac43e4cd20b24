"""A net that ends in a softmax, before a loss (cross-entropy) that applies its own."""

from __future__ import annotations

import math

from torch import Tensor, nn


class LogitsMLP(nn.Module):
    """The healthy twin: the last layer's scores are logits."""

    def __init__(self, in_shape: list[int], num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), hidden), nn.ReLU())
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x))


class SoftmaxMLP(LogitsMLP):
    """The bug: probabilities out, and CrossEntropyLoss takes a softmax of them again."""

    def __init__(self, in_shape: list[int], num_classes: int, hidden: int = 64) -> None:
        super().__init__(in_shape, num_classes, hidden)
        self.squash = nn.Softmax(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.squash(super().forward(x))
