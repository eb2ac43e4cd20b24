"""Nets: output shapes from the data's shapes, capacity knobs, and clear errors for impossible shapes."""

from __future__ import annotations

import pytest
import torch

from practicum.errors import UserError
from practicum.nets.cnn import ConvNet
from practicum.nets.linear import Linear
from practicum.nets.mlp import MLP


@pytest.mark.parametrize(
    "net",
    [
        Linear([1, 8, 8], 10),
        MLP([13], 3, hidden_units=16, depth=3, dropout=0.5),
        MLP([1, 8, 8], 10, batch_norm=False),
        ConvNet([1, 8, 8], 10),
        ConvNet([3, 32, 32], 100, channels=[8, 16, 32], kernel_size=5, padding=2),
        ConvNet([1, 8, 8], 10, kernel_size=3, padding=0),
    ],
    ids=["linear", "mlp-vec", "mlp-img", "cnn", "cnn-rgb", "cnn-valid"],
)
def test_output_shape(net: torch.nn.Module):
    in_shape = {10: [1, 8, 8], 3: [13], 100: [3, 32, 32]}
    classes = net(torch.zeros(4, *in_shape[_classes(net)])).shape[1]
    assert classes == _classes(net)


def _classes(net: torch.nn.Module) -> int:
    return [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1].out_features


def test_capacity_knobs_change_parameter_count():
    small = sum(p.numel() for p in MLP([64], 10, hidden_units=16, depth=1).parameters())
    large = sum(p.numel() for p in MLP([64], 10, hidden_units=64, depth=3).parameters())
    assert large > 4 * small
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in ConvNet([1, 8, 8], 10).modules()) == 2
    assert not any(
        isinstance(m, torch.nn.BatchNorm2d)
        for m in ConvNet([1, 8, 8], 10, batch_norm=False).modules()
    )


def test_cnn_on_vectors_is_a_clear_error():
    with pytest.raises(UserError, match="model=cnn needs image inputs"):
        ConvNet([13], 3)


def test_kernel_too_large_is_a_clear_error():
    with pytest.raises(UserError, match="does not fit inputs of shape"):
        ConvNet([1, 8, 8], 10, channels=[8, 8, 8], kernel_size=5, padding=0)


def test_one_class_is_refused():
    with pytest.raises(UserError, match="at least 2 classes"):
        Linear([4], 1)
