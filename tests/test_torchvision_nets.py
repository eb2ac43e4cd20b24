"""ResNet, VGG and Inception-V3 from torchvision: real training runs, shapes, pretrained weights, freezing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from practicum.errors import UserError
from practicum.nets.torchvision_nets import VGG, InceptionV3, ResNet

from conftest import train

FAST = ["debug=fast", "diagnosis.baseline_model=null"]


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=resnet", "model.net.depth=18"],
        pytest.param(["model=vgg", "model.net.depth=11"], marks=pytest.mark.slow),
        pytest.param(["model=inception"], marks=pytest.mark.slow),
    ],
    ids=lambda o: " ".join(o),
)
def test_family_trains_on_digits(tmp_path: Path, overrides: list[str]):
    value, summary, run_dir = train(tmp_path, [*FAST, *overrides])
    assert summary["status"] == "completed"
    for split in ("train", "val", "test"):
        for name in ("acc", "f1", "loss"):
            assert math.isfinite(summary["metrics"][f"{split}/{name}"])
    assert value == pytest.approx(summary["metrics"]["val/acc"])
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    "make",
    [lambda: ResNet((3, 32, 32), 7, depth=50), lambda: VGG((3, 32, 32), 7, depth=16)],
    ids=["resnet50", "vgg16_bn"],
)
def test_output_shape_on_32px_rgb(make):
    net = make().eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_small_input_adaptations():
    resnet = ResNet((1, 8, 8), 10)
    assert resnet.backbone.conv1.kernel_size == (3, 3) and resnet.backbone.conv1.stride == (1, 1)
    assert isinstance(resnet.backbone.maxpool, nn.Identity)
    assert resnet.backbone.conv1.in_channels == 1
    assert VGG((1, 8, 8), 10).resize_to == (32, 32)
    assert ResNet((3, 96, 96), 10).backbone.conv1.kernel_size == (7, 7)


def _perturbed_backbone_state(net: nn.Module) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        for param in net.parameters():
            param.add_(torch.randn_like(param))
    return {k: v.clone() for k, v in net.backbone.state_dict().items()}


def test_pretrained_loads_a_saved_state_dict(tmp_path: Path):
    state = _perturbed_backbone_state(ResNet((1, 8, 8), 10))
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    loaded = ResNet((1, 8, 8), 10, pretrained=str(path)).backbone.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_pretrained_skips_mismatched_stem_and_head(tmp_path: Path):
    """An ImageNet-shaped torchvision state dict: 3-channel 7x7 stem and 1000-class fc are skipped."""
    source = ResNet((3, 96, 96), 1000, small_input=False)
    state = _perturbed_backbone_state(source)
    path = tmp_path / "imagenet_like.pth"
    torch.save(state, path)
    net = ResNet((1, 8, 8), 10, pretrained=str(path))
    loaded = net.backbone.state_dict()
    assert torch.equal(loaded["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])
    assert loaded["conv1.weight"].shape == (64, 1, 3, 3)
    assert loaded["fc.weight"].shape == (10, 512)


def test_freeze_backbone_trains_only_the_head():
    net = ResNet((1, 8, 8), 10, freeze_backbone=True)
    trainable = {name for name, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"backbone.fc.weight", "backbone.fc.bias"}
    net.train()
    assert not net.backbone.bn1.training  # frozen batch norm keeps its running statistics
    vgg = VGG((1, 8, 8), 10, freeze_backbone=True)
    assert all(
        n.startswith("backbone.classifier.") for n, p in vgg.named_parameters() if p.requires_grad
    )


def test_missing_weights_file_names_the_path(tmp_path: Path):
    missing = tmp_path / "nowhere" / "weights.pth"
    with pytest.raises(UserError, match=str(missing)):
        ResNet((1, 8, 8), 10, pretrained=str(missing))


def test_uncached_weights_enum_names_the_cache_path(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(UserError, match="does not download") as info:
        ResNet((1, 8, 8), 10, pretrained="ResNet18_Weights.IMAGENET1K_V1")
    assert str(expected) in str(info.value)


@pytest.mark.parametrize(
    "make, valid",
    [
        (lambda: ResNet((1, 8, 8), 10, depth=20), "18|34|50|101"),
        (lambda: VGG((1, 8, 8), 10, depth=12), "11|13|16|19"),
    ],
    ids=["resnet", "vgg"],
)
def test_bad_depth_lists_the_valid_depths(make, valid):
    with pytest.raises(UserError, match=valid.replace("|", r"\|")):
        make()


def test_vector_data_is_refused():
    with pytest.raises(UserError, match="image inputs"):
        InceptionV3((13,), 3)


def test_pretrained_and_freeze_reach_the_net(tmp_path: Path):
    from practicum.run.build import build_task

    from conftest import compose_train

    path = tmp_path / "weights.pth"
    source = ResNet((1, 8, 8), 10)
    torch.save(source.state_dict(), path)
    cfg = compose_train(
        tmp_path, ["model=resnet", f"model.net.pretrained={path}", "model.net.freeze_backbone=true"]
    )
    task = build_task(cfg)
    for key, value in source.state_dict().items():
        assert torch.equal(task.net.state_dict()[key], value), key
    trainable = {name for name, p in task.net.named_parameters() if p.requires_grad}
    assert trainable == {"backbone.fc.weight", "backbone.fc.bias"}
