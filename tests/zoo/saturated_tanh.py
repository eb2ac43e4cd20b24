"""Tanh units saturated from the start: weights initialized 50 times too large."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class ScaledTanh(nn.Module):
    """The healthy twin: default initialization."""

    def __init__(self, in_shape: list[int], num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = nn.Linear(math.prod(in_shape), hidden)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(torch.tanh(self.hidden(x.flatten(1))))


class SaturatedTanh(ScaledTanh):
    """The bug: a custom init multiplies the hidden weights by 50."""

    def __init__(self, in_shape: list[int], num_classes: int, hidden: int = 64) -> None:
        super().__init__(in_shape, num_classes, hidden)
        with torch.no_grad():
            self.hidden.weight.mul_(50.0)
