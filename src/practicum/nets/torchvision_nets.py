"""ResNet, VGG and Inception-V3 from torchvision's constructors, adapted to the data's shape.

Each net wraps a torchvision model as `self.backbone` (so torchvision state dicts load as they are),
changes only what the data forces — the first conv's input channels, a stem or input size for tiny
images, the classifier's output classes — and can start from pretrained weights. Nothing downloads:
pretrained weights come from a file, or from the torch hub cache when given as a weights enum.

`freeze_backbone=True` trains only the head. The backbone's batch-norm layers then stay in eval
mode too: their running statistics belong to the pretrained weights, and updating them from a new
(often tiny) dataset under frozen weights would silently shift every feature the head sees.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import Tensor, nn

from practicum.config.constraints import Fraction, PositiveInt, Weights
from practicum.config.knobs import Choice, Double, Dropout, Toggle
from practicum.errors import UserError
from practicum.nets.sizes import dry_run, require_classes, require_image_shape

# torch's batch-norm layers, named one by one: their common base class is private
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

log = logging.getLogger(__name__)

RESNET_DEPTHS = {18: tvm.resnet18, 34: tvm.resnet34, 50: tvm.resnet50, 101: tvm.resnet101}
VGG_DEPTHS = {11: "vgg11", 13: "vgg13", 16: "vgg16", 19: "vgg19"}
SMALL_INPUT_PX = 64  # ResNet: images up to this size get the CIFAR stem
VGG_MIN_PX = 32  # VGG's five 2x poolings leave 1x1 at 32 px
INCEPTION_MIN_PX = 75  # the smallest input Inception-V3's stride-2 stages accept
_WEIGHTS_ENUM = re.compile(r"^\w+_Weights\.\w+$")


class _TorchvisionNet(nn.Module):
    """A torchvision model as `backbone`, an optional input resize, and a head that may train alone."""

    def __init__(self, backbone: nn.Module, head: str, resize_to: tuple[int, int] | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head_name = head
        self.resize_to = resize_to
        self.frozen = False

    def forward(self, x: Tensor) -> Tensor:
        if self.resize_to is not None and tuple(x.shape[-2:]) != self.resize_to:
            x = F.interpolate(x, size=self.resize_to, mode="bilinear", align_corners=False)
        return self.backbone(x)

    def head(self) -> nn.Module:
        return getattr(self.backbone, self.head_name)

    def finish(
        self, in_shape: Sequence[int], pretrained: str | None, freeze: bool, what: str
    ) -> None:
        """Load weights, freeze, and check the shapes once with a dummy batch."""
        if pretrained:
            load_pretrained(self.backbone, pretrained)
        if freeze:
            self.freeze_backbone()
        dry_run(self, in_shape, what)

    @property
    def frozen_on_purpose(self) -> tuple[str, ...]:
        """The module paths frozen by design, which the checks report as deliberate (docs/extending.md)."""
        return ("backbone",) if self.frozen else ()

    def freeze_backbone(self) -> None:
        self.frozen = True
        for param in self.backbone.parameters():
            param.requires_grad_(False)
        for param in self.head().parameters():
            param.requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True) -> _TorchvisionNet:
        super().train(mode)
        if self.frozen:
            head_modules = set(self.head().modules())
            for module in self.backbone.modules():
                if isinstance(module, BATCH_NORMS) and module not in head_modules:
                    module.eval()
        return self


class ResNet(_TorchvisionNet):
    """torchvision ResNet; images up to 64 px get a 3x3 stride-1 stem without max-pool (CIFAR style)."""

    # what the diagnosis and the autopilot may turn (practicum/config/knobs.py)
    knobs = {"depth": Choice(ladder=tuple(RESNET_DEPTHS))}

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        depth: Annotated[int, PositiveInt] = 18,
        small_input: bool = True,
        pretrained: Annotated[str | None, Weights] = None,
        freeze_backbone: bool = False,
    ) -> None:
        in_channels, height, width = require_image_shape(in_shape, "resnet")
        backbone = _pick(RESNET_DEPTHS, depth, "resnet")(weights=None)
        if small_input and max(height, width) <= SMALL_INPUT_PX:
            backbone.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            backbone.maxpool = nn.Identity()
        elif in_channels != 3:
            backbone.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        backbone.fc = nn.Linear(backbone.fc.in_features, require_classes(num_classes))
        super().__init__(backbone, head="fc", resize_to=None)
        self.finish(in_shape, pretrained, freeze_backbone, f"model.net (resnet{depth})")


class VGG(_TorchvisionNet):
    """torchvision VGG (batch norm by default); inputs under 32 px are upsampled to 32x32."""

    # what the diagnosis and the autopilot may turn (practicum/config/knobs.py)
    knobs = {
        "depth": Choice(ladder=tuple(VGG_DEPTHS)),
        "hidden": Double(),
        "dropout": Dropout(),
        "batch_norm": Toggle(),
    }

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        depth: Annotated[int, PositiveInt] = 11,
        batch_norm: bool = True,
        hidden: Annotated[int, PositiveInt] = 512,
        dropout: Annotated[float, Fraction] = 0.5,
        pretrained: Annotated[str | None, Weights] = None,
        freeze_backbone: bool = False,
    ) -> None:
        in_channels, height, width = require_image_shape(in_shape, "vgg")
        name = _pick(VGG_DEPTHS, depth, "vgg") + ("_bn" if batch_norm else "")
        backbone = getattr(tvm, name)(weights=None)
        first = backbone.features[0]
        if in_channels != first.in_channels:
            backbone.features[0] = nn.Conv2d(in_channels, first.out_channels, 3, padding=1)
        # torchvision's 7x7 pool and 25088x4096 classifier are sized for 224 px ImageNet; pooling to
        # 1x1 and a small classifier fit any input of at least 32 px
        backbone.avgpool = nn.AdaptiveAvgPool2d(1)
        backbone.classifier = nn.Sequential(
            nn.Linear(512, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, require_classes(num_classes)),
        )
        resize = (VGG_MIN_PX, VGG_MIN_PX) if min(height, width) < VGG_MIN_PX else None
        super().__init__(backbone, head="classifier", resize_to=resize)
        self.finish(in_shape, pretrained, freeze_backbone, f"model.net ({name})")


class InceptionV3(_TorchvisionNet):
    """torchvision Inception-V3 without the auxiliary head; inputs under 75 px are resized to 75x75."""

    # what the diagnosis and the autopilot may turn (practicum/config/knobs.py)
    knobs = {"dropout": Dropout()}

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        dropout: Annotated[float, Fraction] = 0.5,
        pretrained: Annotated[str | None, Weights] = None,
        freeze_backbone: bool = False,
    ) -> None:
        in_channels, height, width = require_image_shape(in_shape, "inception")
        backbone = tvm.inception_v3(
            weights=None, aux_logits=False, init_weights=True, dropout=dropout
        )
        if in_channels != 3:
            backbone.Conv2d_1a_3x3.conv = nn.Conv2d(in_channels, 32, 3, stride=2, bias=False)
        backbone.fc = nn.Linear(backbone.fc.in_features, require_classes(num_classes))
        small = min(height, width) < INCEPTION_MIN_PX
        resize = (INCEPTION_MIN_PX, INCEPTION_MIN_PX) if small else None
        super().__init__(backbone, head="fc", resize_to=resize)
        self.finish(in_shape, pretrained, freeze_backbone, "model.net (inception_v3)")


def _pick(choices: dict[int, Any], depth: int, model: str) -> Any:
    if depth not in choices:
        valid = "|".join(str(d) for d in choices)
        raise UserError(f"model.net.depth={depth} is not a {model} depth: use one of {valid}")
    return choices[depth]


def load_pretrained(backbone: nn.Module, source: str) -> None:
    """Load every tensor whose name and shape fit; log what was skipped (stem and head, usually)."""
    state = _read_state_dict(source)
    own = backbone.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise UserError(
            f"model.net.pretrained={source} holds no weights that fit this net: "
            "check it was saved from the same model family and depth"
        )
    backbone.load_state_dict(fitting, strict=False)
    skipped = sorted(set(state) - set(fitting))
    kept = sorted(set(own) - set(fitting))
    log.info("pretrained %s: loaded %d tensors", source, len(fitting))
    if skipped or kept:
        log.info(
            "pretrained %s: skipped %s (name or shape differs); freshly initialized: %s",
            source,
            skipped,
            kept,
        )


def _read_state_dict(source: str) -> dict[str, Tensor]:
    path = Path(source).expanduser()
    if not path.is_file() and _WEIGHTS_ENUM.match(source):
        path = _cached_weights_path(source)
    if not path.is_file():
        raise UserError(
            f"model.net.pretrained={source}: no such file {path}; give the path of a saved "
            "state dict or a torchvision weights enum whose file is in the torch hub cache"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"model.net.pretrained: cannot read {path} as a state dict: {exc}") from exc
    return _strip_wrappers(state)


def _cached_weights_path(name: str) -> Path:
    """Where torchvision would cache the enum's file; there is no download at run time."""
    try:
        weights = tvm.get_weight(name)
    except (KeyError, ValueError, AttributeError) as exc:
        raise UserError(
            f"model.net.pretrained={name} is not a torchvision weights enum "
            "(for example ResNet18_Weights.IMAGENET1K_V1) nor an existing file"
        ) from exc
    path = Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise UserError(
            f"model.net.pretrained={name} needs the file {path}, which is not there; practicum "
            f"does not download at run time: fetch {weights.url} to that path, or pass a file path"
        )
    return path


def _strip_wrappers(state: Any) -> dict[str, Tensor]:
    """Accept a bare torchvision state dict, this wrapper's, or a Lightning checkpoint's."""
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError("model.net.pretrained must hold a state dict (a dict of tensors)")
    for prefix in ("net.backbone.", "backbone."):
        if any(key.startswith(prefix) for key in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            break
    return {k: v for k, v in state.items() if isinstance(v, Tensor)}
