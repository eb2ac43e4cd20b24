"""Faster R-CNN, RetinaNet and FCOS from torchvision, on a backbone sized for the data.

torchvision does the detection work (anchors, box coding, sampling, NMS, losses); this module
only picks the backbone and the sizes. Backbones: `small`, a compact conv stack (`channels`, one
entry per stride-2 stage, batch norm) giving one feature map, or a torchvision ResNet with an FPN
(`resnet18`, `resnet34`, `resnet50`). Nothing pretrained and nothing downloads. Images are not
resized beyond `image_size` (torchvision's transform would otherwise upscale them to 800 px).
`num_classes` counts the background, as torchvision does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Annotated

from torch import Tensor, nn
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from practicum.config.constraints import Fraction, PositiveInt, PositiveInts
from practicum.config.knobs import Double
from practicum.errors import UserError

RESNETS = ("resnet18", "resnet34", "resnet50")


class SmallBackbone(nn.Module):
    """Stride-2 stages of two 3x3 conv-BN-ReLU layers; one feature map named "0" at stride 2**len."""

    def __init__(self, channels: Annotated[Sequence[int], PositiveInts] = (16, 32, 64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for width in channels:
            layers += [
                nn.Conv2d(previous, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
        self.body = nn.Sequential(*layers)
        self.out_channels = previous

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return OrderedDict([("0", self.body(x))])


def make_backbone(name: str, channels: Sequence[int]) -> tuple[nn.Module, int]:
    """The backbone and its number of feature maps (the FPN adds a pooled one)."""
    if name == "small":
        if not channels:
            raise UserError("model.net.channels is empty: give one width per stage, e.g. [16, 32]")
        return SmallBackbone(channels), 1
    if name in RESNETS:
        # plain batch norm: torchvision's frozen batch norm suits pretrained weights only
        backbone = resnet_fpn_backbone(
            backbone_name=name,
            weights=None,
            norm_layer=nn.BatchNorm2d,
            trainable_layers=5,
            returned_layers=[2, 3, 4],
        )
        return backbone, 4
    raise UserError(f"model.net.backbone={name!r} is invalid: use small or one of {RESNETS}")


def anchors(sizes: Sequence[int], ratios: Sequence[float], levels: int) -> AnchorGenerator:
    """One size per level when the sizes match the levels, else every size on every level."""
    if levels > 1 and len(sizes) == levels:
        per_level = tuple((int(s),) for s in sizes)
    else:
        per_level = (tuple(int(s) for s in sizes),) * levels
    return AnchorGenerator(per_level, (tuple(float(r) for r in ratios),) * levels)


def _sizes(image_size: int) -> dict:
    return {"min_size": image_size, "max_size": image_size}


def faster_rcnn(
    num_classes: int,
    image_size: Annotated[int, PositiveInt] = 128,
    backbone: str = "small",
    channels: Annotated[Sequence[int], PositiveInts] = (16, 32, 64, 64),
    anchor_sizes: Annotated[Sequence[int], PositiveInts] = (16, 32, 64),
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    representation_size: Annotated[int, PositiveInt] = 128,
    proposals: Annotated[int, PositiveInt] = 100,
    score_thresh: Annotated[float, Fraction] = 0.05,
) -> FasterRCNN:
    """Two stages: the RPN proposes `proposals` boxes per image, the box head classifies and refines."""
    body, levels = make_backbone(backbone, channels)
    names = [str(i) for i in range(min(levels, 3))]
    head = TwoMLPHead(body.out_channels * 7 * 7, representation_size)
    return FasterRCNN(
        body,
        rpn_anchor_generator=anchors(anchor_sizes, aspect_ratios, levels),
        box_roi_pool=MultiScaleRoIAlign(names, output_size=7, sampling_ratio=2),
        box_head=head,
        box_predictor=FastRCNNPredictor(representation_size, _classes(num_classes)),
        rpn_pre_nms_top_n_train=2 * proposals,
        rpn_post_nms_top_n_train=proposals,
        rpn_pre_nms_top_n_test=2 * proposals,
        rpn_post_nms_top_n_test=proposals,
        box_batch_size_per_image=64,
        box_score_thresh=score_thresh,
        **_sizes(image_size),
    )


def retinanet(
    num_classes: int,
    image_size: Annotated[int, PositiveInt] = 128,
    backbone: str = "small",
    channels: Annotated[Sequence[int], PositiveInts] = (16, 32, 64, 64),
    anchor_sizes: Annotated[Sequence[int], PositiveInts] = (16, 32, 64),
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    score_thresh: Annotated[float, Fraction] = 0.05,
) -> RetinaNet:
    """One stage: dense class and box predictions on every anchor, focal loss."""
    body, levels = make_backbone(backbone, channels)
    return RetinaNet(
        body,
        num_classes=_classes(num_classes),
        anchor_generator=anchors(anchor_sizes, aspect_ratios, levels),
        score_thresh=score_thresh,
        detections_per_img=100,
        **_sizes(image_size),
    )


def fcos(
    num_classes: int,
    image_size: Annotated[int, PositiveInt] = 128,
    backbone: str = "small",
    channels: Annotated[Sequence[int], PositiveInts] = (16, 32, 64, 64),
    score_thresh: Annotated[float, Fraction] = 0.05,
) -> FCOS:
    """One stage, anchor-free: per-location class, box distances and centerness."""
    body, levels = make_backbone(backbone, channels)
    # FCOS places one point per location: a single square "anchor" of the level's stride
    generator = AnchorGenerator(((8,),) * levels, ((1.0,),) * levels)
    return FCOS(
        body,
        num_classes=_classes(num_classes),
        anchor_generator=generator,
        score_thresh=score_thresh,
        detections_per_img=100,
        **_sizes(image_size),
    )


def _classes(num_classes: int) -> int:
    if int(num_classes) < 2:
        raise UserError(
            f"num_classes={num_classes} is invalid: detection needs the background and one class"
        )
    return int(num_classes)


# what the diagnosis and the autopilot may turn (practicum/config/knobs.py)
faster_rcnn.knobs = {"channels": Double(most=512), "representation_size": Double(most=1024)}
retinanet.knobs = {"channels": Double(most=512)}
