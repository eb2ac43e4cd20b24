"""Shape checks shared by the nets: a bad combination is a clear error at build time, not mid-run."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch
from torch import nn

from practicum.errors import UserError


def require_image_shape(in_shape: Sequence[int], model: str) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise UserError(
            f"model={model} needs image inputs (channels, height, width) but the data gives "
            f"shape {list(in_shape)}: use model=mlp or model=linear for vectors"
        )
    channels, height, width = (int(v) for v in in_shape)
    return channels, height, width


def require_classes(num_classes: int) -> int:
    if int(num_classes) < 2:
        raise UserError(
            f"num_classes={num_classes} is invalid: classification needs at least 2 classes"
        )
    return int(num_classes)


def flat_size(in_shape: Sequence[int]) -> int:
    return int(prod(int(v) for v in in_shape))


def dry_run(module: nn.Module, in_shape: Sequence[int], what: str) -> torch.Tensor:
    """Run a 2-example dummy batch through `module` and return its output; explain shape failures."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return module(torch.zeros(2, *in_shape))
    except RuntimeError as exc:
        raise UserError(
            f"{what} does not fit inputs of shape {list(in_shape)}: {str(exc).splitlines()[0]}"
        ) from exc
    finally:
        module.train(was_training)
