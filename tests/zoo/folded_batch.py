"""A reshape that folds the batch axis into the features: shapes fit, examples mix."""

from __future__ import annotations

from torch import Tensor, nn


class FlatConv(nn.Module):
    """The healthy twin: flatten each example's feature maps."""

    def __init__(self, in_shape: list[int], num_classes: int, channels: int = 16) -> None:
        super().__init__()
        in_channels, height, width = in_shape
        self.conv = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU())
        self.out = nn.Linear(channels * height * width, num_classes)

    def flatten(self, x: Tensor) -> Tensor:
        return x.reshape(len(x), -1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.flatten(self.conv(x)))


class FoldedConv(FlatConv):
    """The bug: channels first, then a reshape to (batch, -1) reads across examples."""

    def flatten(self, x: Tensor) -> Tensor:
        return x.transpose(0, 1).reshape(len(x), -1)
