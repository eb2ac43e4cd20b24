"""A multilayer perceptron for fixed-size vectors (images are flattened)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from torch import Tensor, nn

from practicum.config.constraints import Fraction, PositiveInt
from practicum.config.knobs import Add, Double, Dropout, Toggle
from practicum.errors import UserError
from practicum.nets.sizes import flat_size, require_classes


class MLP(nn.Module):
    """`depth` hidden layers of `hidden_units`, each Linear -> [BatchNorm] -> ReLU -> [Dropout]."""

    # what the diagnosis and the autopilot may turn (practicum/config/knobs.py)
    knobs = {
        "hidden_units": Double(),
        "depth": Add(most=8),
        "dropout": Dropout(),
        "batch_norm": Toggle(),
    }

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        hidden_units: Annotated[int, PositiveInt] = 128,
        depth: Annotated[int, PositiveInt] = 2,
        batch_norm: bool = True,
        dropout: Annotated[float, Fraction] = 0.2,
    ) -> None:
        super().__init__()
        if depth < 1 or hidden_units < 1:
            raise UserError(
                f"model.net.depth={depth} and hidden_units={hidden_units} must both be >= 1"
            )
        layers: list[nn.Module] = [nn.Flatten()]
        width = flat_size(in_shape)
        for _ in range(depth):
            layers.append(nn.Linear(width, hidden_units, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_units))
            layers.append(nn.ReLU(inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden_units
        layers.append(nn.Linear(width, require_classes(num_classes)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
