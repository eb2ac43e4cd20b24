"""A layer built inside forward: new weights on every call, which no optimizer ever holds."""

from __future__ import annotations

import math

from torch import Tensor, nn
from torch.nn import functional as F


class BuiltHead(nn.Module):
    """The healthy twin: the head is built once, in __init__."""

    def __init__(self, in_shape: list[int], num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = nn.Linear(math.prod(in_shape), hidden)
        self.num_classes = num_classes
        self.head = nn.Linear(hidden, num_classes)

    def classify(self, x: Tensor) -> Tensor:
        return self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(F.relu(self.hidden(x.flatten(1))))


class FreshHead(BuiltHead):
    """The bug: the head is made again in every forward."""

    def classify(self, x: Tensor) -> Tensor:
        return nn.Linear(x.shape[1], self.num_classes)(x)
