"""A small CNN: conv blocks (Conv -> [BatchNorm] -> ReLU -> MaxPool), global average pool, linear head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from torch import Tensor, nn

from practicum.config.constraints import Fraction, PositiveInt, PositiveInts
from practicum.config.knobs import Add, Double, Dropout, Toggle
from practicum.errors import UserError
from practicum.nets.sizes import dry_run, require_classes, require_image_shape


class ConvNet(nn.Module):
    """One block per entry of `channels`; pooling halves the size while it is at least 2 pixels."""

    # what the diagnosis and the autopilot may turn (practicum/config/knobs.py)
    knobs = {
        "channels": Double(most=1024),
        "kernel_size": Add(step=2, most=7),
        "dropout": Dropout(),
        "batch_norm": Toggle(),
    }

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        channels: Annotated[Sequence[int], PositiveInts] = (32, 64),
        kernel_size: Annotated[int, PositiveInt] = 3,
        padding: int | str = "same",
        batch_norm: bool = True,
        dropout: Annotated[float, Fraction] = 0.25,
    ) -> None:
        super().__init__()
        in_channels, height, width = require_image_shape(in_shape, "cnn")
        if not channels:
            raise UserError("model.net.channels is empty: give at least one block, e.g. [32, 64]")
        blocks: list[nn.Module] = []
        size = min(height, width)
        for out_channels in channels:
            blocks.append(
                nn.Conv2d(
                    in_channels, out_channels, kernel_size, padding=padding, bias=not batch_norm
                )
            )
            if batch_norm:
                blocks.append(nn.BatchNorm2d(out_channels))
            blocks.append(nn.ReLU(inplace=True))
            size = _conv_output_size(size, kernel_size, padding)
            if size >= 2:
                blocks.append(nn.MaxPool2d(2))
                size //= 2
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(in_channels, require_classes(num_classes)),
        )
        dry_run(
            self.features,
            in_shape,
            f"model.net (kernel_size={kernel_size}, padding={padding}, {len(channels)} blocks)",
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _conv_output_size(size: int, kernel_size: int, padding: int | str) -> int:
    if padding == "same":
        return size
    pad = 0 if padding == "valid" else int(padding)
    return size + 2 * pad - kernel_size + 1
