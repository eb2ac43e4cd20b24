"""What `trainer=gpu` turns on beyond Lightning's defaults: the mixed precision the GPU runs best,
and channels-last memory for convolutional nets. (Pinned memory and persistent loader workers are
the image data's own defaults: `pin_memory: auto` pins when a CUDA GPU is visible.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

# `trainer.precision: mixed`: resolved by `trainer_precision` when the Trainer is built
MIXED = "mixed"


def mixed_precision(bf16_supported: bool) -> str:
    """bf16 keeps fp32's exponent range, so it needs no loss scaling and cannot overflow; GPUs
    without it (before Ampere) get fp16 with Lightning's loss scaler."""
    return "bf16-mixed" if bf16_supported else "16-mixed"


def trainer_precision(requested: Any) -> dict[str, str]:
    """The Trainer's `precision` argument for `precision: mixed` ({} for any other value, which
    Lightning reads as given): mixed on a CUDA GPU, full precision without one."""
    if requested != MIXED:
        return {}
    if not torch.cuda.is_available():
        return {"precision": "32-true"}
    return {"precision": mixed_precision(torch.cuda.is_bf16_supported())}


def has_conv2d(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def to_channels_last(module: nn.Module) -> bool:
    """Weights in channels-last (NHWC) memory and 4-D inputs converted on the way in, for a module
    with 2-D convolutions; True when it was converted (it is left as it is otherwise)."""
    if not has_conv2d(module):
        return False
    module.to(memory_format=torch.channels_last)
    if not getattr(module, "practicum_channels_last", False):
        module.register_forward_pre_hook(_inputs_to_channels_last)
        module.practicum_channels_last = True
    return True


def _inputs_to_channels_last(module: nn.Module, args: tuple) -> tuple:
    return tuple(
        a.contiguous(memory_format=torch.channels_last)
        if isinstance(a, torch.Tensor) and a.dim() == 4
        else a
        for a in args
    )


class ChannelsLast(pl.Callback):
    """Train nets with 2-D convolutions in channels-last memory on the listed device types (CUDA):
    under mixed precision, tensor-core convolutions read NHWC directly instead of transposing
    NCHW at every layer. Applied in `setup`, before the optimizer holds the parameters; the net's
    forward converts its 4-D inputs."""

    def __init__(self, devices: Sequence[str] = ("cuda",)) -> None:
        self.devices = tuple(devices)
        self.applied = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.strategy.root_device.type in self.devices:
            net = getattr(pl_module, "net", pl_module)
            self.applied = to_channels_last(net if isinstance(net, nn.Module) else pl_module)
