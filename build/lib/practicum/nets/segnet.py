"""SegNet (Badrinarayanan et al. 2017), compact: the decoder unpools with the encoder's max-pool indices.

Each encoder stage is `depth` conv-BN-ReLU layers then a 2x2 max-pool that remembers where each
maximum came from; the mirrored decoder stage puts values back at those positions (MaxUnpool2d)
and convolves the sparse map into a dense one. Capacity knobs: `channels` (one width per stage)
and `depth` (convs per stage). Any input size works: unpooling restores each stage's exact size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from torch import Tensor, nn

from practicum.config.constraints import PositiveInt, PositiveInts
from practicum.config.knobs import Add, Double
from practicum.errors import UserError


def _convs(in_channels: int, out_channels: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [
            nn.Conv2d(
                in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class SegNet(nn.Module):
    """Per-pixel class logits `(B, num_classes, H, W)` for images `(B, in_channels, H, W)`."""

    # what the diagnosis and the autopilot may turn (practicum/config/knobs.py)
    knobs = {"channels": Double(most=512), "depth": Add(most=4)}

    def __init__(
        self,
        num_classes: int,
        in_channels: Annotated[int, PositiveInt] = 3,
        channels: Annotated[Sequence[int], PositiveInts] = (16, 32, 64),
        depth: Annotated[int, PositiveInt] = 2,
    ) -> None:
        super().__init__()
        if int(num_classes) < 2 or not channels or depth < 1:
            raise UserError(
                f"SegNet needs num_classes >= 2, channels and depth >= 1 (got num_classes="
                f"{num_classes}, channels={list(channels)}, depth={depth}): "
                "for example model.net.channels=[16,32,64] model.net.depth=2"
            )
        widths = [int(in_channels), *(int(c) for c in channels)]
        self.encoders = nn.ModuleList(
            _convs(widths[i], widths[i + 1], depth) for i in range(len(channels))
        )
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)
        # decoder stage i mirrors encoder stage i: back from widths[i+1] to widths[i] (first: a head)
        self.decoders = nn.ModuleList(
            _convs(widths[i + 1], max(widths[i], widths[1]), depth) for i in range(len(channels))
        )
        self.classifier = nn.Conv2d(widths[1], int(num_classes), 1)

    def forward(self, x: Tensor) -> Tensor:
        trail = []
        for encoder in self.encoders:
            x = encoder(x)
            size = x.shape[-2:]
            x, indices = self.pool(x)
            trail.append((indices, size))
        for decoder, (indices, size) in zip(reversed(self.decoders), reversed(trail), strict=True):
            x = decoder(self.unpool(x, indices, output_size=size))
        return self.classifier(x)
