"""FCN (Long et al. 2015) from torchvision: a ResNet trunk, a conv head, bilinear upsampling.

torchvision's `FCN` and `FCNHead` around a torchvision ResNet whose features are taken at
`feature_layer` (layer2: stride 8, layer3: 16, layer4: 32): a shallower layer keeps more detail
and costs less, which suits small images. Nothing pretrained, nothing downloads.
"""

from __future__ import annotations

import torchvision.models as tvm
from torch import Tensor, nn
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.models.segmentation.fcn import FCN, FCNHead

from practicum.errors import UserError

TRUNKS = {"resnet18": tvm.resnet18, "resnet34": tvm.resnet34, "resnet50": tvm.resnet50}
LAYERS = ("layer2", "layer3", "layer4")


class FCNNet(nn.Module):
    """Per-pixel class logits `(B, num_classes, H, W)`; torchvision's FCN returns them under "out"."""

    def __init__(
        self, num_classes: int, backbone: str = "resnet18", feature_layer: str = "layer2"
    ) -> None:
        super().__init__()
        if backbone not in TRUNKS or feature_layer not in LAYERS:
            raise UserError(
                f"model.net.backbone={backbone!r}, feature_layer={feature_layer!r}: use a backbone "
                f"from {', '.join(TRUNKS)} and a feature_layer from {', '.join(LAYERS)}"
            )
        trunk = TRUNKS[backbone](weights=None)
        stage = getattr(trunk, feature_layer)
        width = (
            stage[-1].conv3.out_channels
            if hasattr(stage[-1], "conv3")
            else stage[-1].conv2.out_channels
        )
        # the trunk up to `feature_layer`, its output under "out" as FCN reads it (same weights
        # and state-dict keys as torchvision's own segmentation models)
        body = create_feature_extractor(trunk, return_nodes={feature_layer: "out"})
        self.fcn = FCN(body, FCNHead(width, int(num_classes)), aux_classifier=None)

    def forward(self, x: Tensor) -> Tensor:
        return self.fcn(x)["out"]
