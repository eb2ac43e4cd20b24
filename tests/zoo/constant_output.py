"""A forward whose output does not depend on its input."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class InputUsed(nn.Module):
    """The healthy twin."""

    def __init__(self, in_shape: list[int], num_classes: int) -> None:
        super().__init__()
        self.layer = nn.Linear(math.prod(in_shape), num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x.flatten(1))


class InputIgnored(InputUsed):
    """The bug: the layer is applied to a zero tensor shaped like the input, not to the input."""

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(torch.zeros(len(x), self.layer.in_features))
