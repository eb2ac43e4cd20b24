"""An MLP with residual blocks: each block adds its output to its input, so a deep stack still
trains (He et al. 2016): the identity path carries the signal and the gradient through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from torch import Tensor, nn

from practicum.config.constraints import Fraction, NonNegativeInt, PositiveInt
from practicum.config.knobs import Add, Double, Dropout
from practicum.errors import UserError
from practicum.nets.sizes import flat_size, require_classes


class ResidualBlock(nn.Module):
    """x + Linear(Dropout(ReLU(Linear(LayerNorm(x))))): the norm sits inside the branch, so the
    identity path is left untouched."""

    def __init__(self, width: int, dropout: Annotated[float, Fraction]) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.LayerNorm(width),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(width, width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResidualMLP(nn.Module):
    """Flatten -> Linear to `hidden_units` -> `depth` residual blocks -> LayerNorm -> classes."""

    # what the diagnosis and the autopilot may turn (practicum/config/knobs.py)
    knobs = {"hidden_units": Double(), "depth": Add(least=0, most=16), "dropout": Dropout()}

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        hidden_units: Annotated[int, PositiveInt] = 128,
        depth: Annotated[int, NonNegativeInt] = 2,
        dropout: Annotated[float, Fraction] = 0.2,
    ) -> None:
        super().__init__()
        if depth < 0 or hidden_units < 1:
            raise UserError(
                f"model.net.depth={depth}, hidden_units={hidden_units}: need depth >= 0, units >= 1"
            )
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat_size(in_shape), hidden_units),
            *(ResidualBlock(hidden_units, dropout) for _ in range(depth)),
            # LayerNorm, not BatchNorm: it works the same for any batch size, even a last batch of 1
            nn.LayerNorm(hidden_units),
            nn.Linear(hidden_units, require_classes(num_classes)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
