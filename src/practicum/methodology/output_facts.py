"""What a net's outputs show on a batch, for the code facts (code_facts.py): scores that are
already probabilities, evaluation that is not deterministic, inputs on the wrong scale, and an
output that ignores its input or mixes the examples of its batch."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from practicum.methodology.unit_probe import (
    ProbePass,
    eval_mode,
    first_difference,
    own_random_state,
    probe_pass,
    tensors_of,
)

SCALE_LIMIT = 100.0  # |mean| or std of an input feature beyond this: the wrong scale
SCALE_FLOOR = 1e-3  # every feature's |mean| and std below this: nearly constant inputs
SUM_TOLERANCE = 1e-3  # scores that sum to 1 within this, per example, are probabilities


def probabilities(probe: ProbePass, kind: str | None) -> str | None:
    """How the scores the loss reads look like probabilities, if they do."""
    scores = probe.scores
    if kind is None or not isinstance(scores, Tensor) or not scores.is_floating_point():
        return None
    scores = scores.detach().float()
    if kind == "logits" and scores.ndim >= 2 and scores.shape[1] >= 2:
        off = (scores.sum(dim=1) - 1).abs().max().item()
        if scores.min().item() >= 0 and off <= SUM_TOLERANCE:
            return f"every score >= 0, each example's {scores.shape[1]} summing to 1"
    # values in [0, 1] alone could be logits, so the call that made them must squash too
    maker = (probe.scores_by or "").lower()
    squashed = any(word in maker for word in ("sigmoid", "softmax"))
    if squashed and scores.min().item() >= 0 and scores.max().item() <= 1:
        return f"every score in [0, 1], out of {probe.scores_by}"
    return None


def random_eval(first: ProbePass, second: ProbePass) -> str | None:
    """Where two eval passes on the same inputs (under other random seeds) first differ; None when
    their outputs agree (a first call may run more code than the next: lazy set-up)."""
    a, b = tensors_of(first.outputs), tensors_of(second.outputs)
    same = len(a) == len(b) and all(
        x.shape == y.shape and torch.allclose(x, y, rtol=1e-5, atol=1e-6)
        for x, y in zip(a, b, strict=True)
    )
    if same:
        return None
    return first_difference(first, second) or "the outputs"


def input_scale(inputs: Any) -> float | None:
    """The largest |mean| or std of one input feature over the examples of a batch: a column of
    vectors, a pixel of images, a step's feature of sequences; the channels of images of
    different sizes (detection)."""
    values = inputs[0] if isinstance(inputs, tuple) else inputs
    if isinstance(values, list):
        if not values or not all(isinstance(v, Tensor) for v in values):
            return None
        columns = torch.cat([v.detach().flatten(1).float() for v in values], dim=1)
    elif isinstance(values, Tensor) and values.is_floating_point() and values.ndim >= 2:
        columns = values.detach().float().flatten(1).T
    else:
        return None
    stats = torch.stack([columns.mean(dim=1).abs(), columns.std(dim=1, correction=0)])
    return float(stats.max())


def scale_wrong(scale: float | None) -> bool:
    return scale is not None and math.isfinite(scale) and not SCALE_FLOOR <= scale <= SCALE_LIMIT


def normalization_key(datamodule: Any) -> str:
    """The override that normalizes this data module's inputs, in words."""
    mode = getattr(datamodule, "normalize", None)
    if mode is False or mode == "none":
        value = "true" if mode is False else "auto"
        return f"data.normalize={value} (it is {str(mode).lower()})"
    return "normalize the inputs in the data module (mean 0, std 1 per feature)"


def dependence(task: Any, inputs: Any, count: int = 4, seed: int = 0) -> tuple[float, float] | None:
    """(own, leak) in eval mode: the largest |d output_0 / d input| for example 0 itself and for
    the other examples of a batch of `count`; (0, 0) when no output depends on the input at all;
    None when the outputs are not per-example tensors (detections)."""
    values = inputs[0] if isinstance(inputs, tuple) else inputs
    if not isinstance(values, Tensor) or not values.is_floating_point() or len(values) < 2:
        return None
    probe_values = values[:count].detach().clone().requires_grad_(True)
    x = (probe_values, inputs[1][:count]) if isinstance(inputs, tuple) else probe_values
    net = task.net
    with eval_mode(net), own_random_state(net, seed), torch.enable_grad():
        outputs = tensors_of(task.probe(x)[0])
        if not outputs or any(len(t) != len(probe_values) for t in outputs):
            return None
        generator = torch.Generator().manual_seed(seed)
        total = sum(
            (t[:1].float() * torch.randn(t[:1].shape, generator=generator).to(t.device)).sum()
            for t in outputs
            if t.is_floating_point() and t.requires_grad
        )
        if not isinstance(total, Tensor):
            return 0.0, 0.0
        (grad,) = torch.autograd.grad(total, probe_values, allow_unused=True)
    if grad is None:
        return 0.0, 0.0
    leak = grad[1:].abs().max().item() if len(grad) > 1 else 0.0
    return grad[:1].abs().max().item(), leak


def mixing_layer(task: Any, inputs: Any, rows: int = 4) -> str | None:
    """The first call whose result for example 0 changes when only the other examples change."""
    values = inputs[0] if isinstance(inputs, tuple) else inputs
    head = values[:rows]
    others = torch.cat([head[:1], 1 - 2 * head[1:]])

    def batch(x: Tensor) -> Any:
        return (x, inputs[1][:rows]) if isinstance(inputs, tuple) else x

    passes = [probe_pass(task, batch(x), fingerprints=True, rows=len(head)) for x in (head, others)]
    return first_difference(*passes)
