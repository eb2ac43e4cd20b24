"""A layer frozen by accident, and the same freeze declared on purpose."""

from __future__ import annotations

import math

from torch import Tensor, nn


class TrainedMLP(nn.Module):
    """The healthy twin: every layer trains."""

    def __init__(self, in_shape: list[int], num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(in_shape), hidden), nn.ReLU()
        )
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))


class FrozenEncoder(TrainedMLP):
    """The bug: a leftover of fine-tuning code freezes the encoder; nothing says it should."""

    def __init__(self, in_shape: list[int], num_classes: int, hidden: int = 64) -> None:
        super().__init__(in_shape, num_classes, hidden)
        self.encoder.requires_grad_(False)


class DeclaredFrozenEncoder(FrozenEncoder):
    """The same freeze, declared: the checks report it as deliberate and pass."""

    frozen_on_purpose = ("encoder",)
