"""Parameters the optimizer never sees: layers kept in a plain Python list."""

from __future__ import annotations

import math

from torch import Tensor, nn


class RegisteredLayers(nn.Module):
    """The healthy twin: the hidden layers are an nn.ModuleList."""

    def __init__(self, in_shape: list[int], num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        first = nn.Sequential(nn.Linear(math.prod(in_shape), hidden), nn.ReLU())
        self.hidden = self.keep([first, nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())])
        self.out = nn.Linear(hidden, num_classes)

    def keep(self, layers: list[nn.Module]) -> nn.ModuleList | list[nn.Module]:
        return nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)


class ListedLayers(RegisteredLayers):
    """The bug: a plain list, so `parameters()` (and the optimizer) holds the output layer only."""

    def keep(self, layers: list[nn.Module]) -> nn.ModuleList | list[nn.Module]:
        return layers
