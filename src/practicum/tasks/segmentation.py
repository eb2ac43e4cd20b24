"""Semantic segmentation: one task for every per-pixel classifier net (SegNet, FCN, ...).

Loss: pixel-wise cross-entropy. Metrics: `miou` (mean intersection over union of the classes,
torchmetrics' JaccardIndex) and `pixel_acc` (share of pixels right). Pixels labelled `ignore_index`
(255, VOC's object borders) count in neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from practicum.constraints import PositiveInt
from practicum.methodology.goal import cost, share
from practicum.tasks.base import OptimizerFactory, Task

STAGES = ("train", "val", "test")


class SegmentationTask(Task):
    """Cross-entropy over pixels; mIoU and pixel accuracy per stage, updated every step."""

    problem = "segmentation"
    logged_metrics = (cost("loss"), share("miou"), share("pixel_acc"))

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: dict[str, Any] | None = None,
        ignore_index: int = 255,
        picture_images: Annotated[int, PositiveInt] = 4,
    ) -> None:
        super().__init__(net, optimizer, scheduler)
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.criterion = nn.CrossEntropyLoss(ignore_index=ignore_index)
        metrics = MetricCollection(
            {
                "miou": MulticlassJaccardIndex(
                    num_classes, average="macro", ignore_index=ignore_index, validate_args=False
                ),
                "pixel_acc": MulticlassAccuracy(
                    num_classes, average="micro", ignore_index=ignore_index, validate_args=False
                ),
            }
        )
        self.metrics = nn.ModuleDict({f"{s}_": metrics.clone(prefix=f"{s}/") for s in STAGES})
        self.losses = nn.ModuleDict({f"{s}_": MeanMetric(nan_strategy="disable") for s in STAGES})

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, masks = batch
        logits = self(images)
        loss = self.criterion(logits, masks)
        self.metrics[f"{stage}_"].update(logits.detach().argmax(dim=1), masks)
        self.losses[f"{stage}_"].update(loss.detach(), weight=len(images))
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, self.eval_split)

    def _log_epoch(self, stage: str) -> None:
        self.log_epoch_metrics(stage, self.metrics[f"{stage}_"], self.losses[f"{stage}_"])

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.eval_split)

    @torch.no_grad()
    def save_pictures(self, datamodule: Any, output_dir: Path, title: str = "") -> Path:
        """predictions.png: image, true mask and predicted mask for a few validation images."""
        from practicum.methodology.pictures import segmentation_picture

        was_training = self.net.training
        self.net.eval()
        dataset = datamodule.splits["val"]
        examples = [dataset[i] for i in range(min(self.hparams.picture_images, len(dataset)))]
        images = torch.stack([image for image, _ in examples]).to(self.device)
        predicted = self.net(images).argmax(dim=1).cpu()
        self.net.train(was_training)
        return segmentation_picture(
            [image for image, _ in examples],
            list(predicted),
            [mask for _, mask in examples],
            datamodule.class_names,
            output_dir / "predictions.png",
            title,
        )
