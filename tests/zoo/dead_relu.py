"""ReLUs dead from the start: a hidden layer whose bias starts far below its inputs' reach."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class LiveReLU(nn.Module):
    """The healthy twin: default initialization, functional ReLUs."""

    def __init__(self, in_shape: list[int], num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.hidden1 = nn.Linear(math.prod(in_shape), hidden)
        self.hidden2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.hidden1(x.flatten(1)))
        return self.out(F.relu(self.hidden2(x)))


class DeadReLU(LiveReLU):
    """The bug: hidden2's bias is initialized to -10 (a sign slip in a custom init)."""

    def __init__(self, in_shape: list[int], num_classes: int, hidden: int = 64) -> None:
        super().__init__(in_shape, num_classes, hidden)
        with torch.no_grad():
            self.hidden2.bias.fill_(-10.0)
