"""Semantic segmentation: one task for every per-pixel classifier net (SegNet, FCN, ...).

Loss: pixel-wise cross-entropy. Metrics: `miou` (mean intersection over union of the classes,
torchmetrics' JaccardIndex) and `pixel_acc` (share of pixels right). Pixels labelled `ignore_index`
(255, VOC's object borders) count in neither.

Standard errors (tasks/noise.py), measured in `test_step` only: the loss's from each image's mean
pixel loss; mIoU's and pixel accuracy's from a bootstrap over images of their per-image confusion
matrices (the pixels of one image are not independent draws, the images are).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
from torch import Tensor, nn
from torch.nn.functional import cross_entropy
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from practicum.config.constraints import PositiveInt
from practicum.config.goal import cost, share
from practicum.tasks.base import OptimizerFactory, Task
from practicum.tasks.noise import bootstrap_errors, finite_errors, gathered, mean_error

STAGES = ("train", "val", "test")


class SegmentationTask(Task):
    """Cross-entropy over pixels; mIoU and pixel accuracy per stage, updated every step."""

    problem = "segmentation"
    logged_metrics = (cost("loss"), share("miou"), share("pixel_acc"))
    score_kind = "logits"

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
        # per image while testing: its mean pixel loss and its pixel confusion matrix
        self._image_losses: list[Tensor] = []
        self._confusions: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def probe_loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, masks = batch
        return self.criterion(self.net(x), masks)

    def _shared_step(
        self, batch: tuple[Tensor, Tensor], stage: str, per_image: bool = False
    ) -> Tensor:
        images, masks = batch
        logits = self(images)
        loss = self.criterion(logits, masks)
        predicted = logits.detach().argmax(dim=1)
        self.metrics[f"{stage}_"].update(predicted, masks)
        self.losses[f"{stage}_"].update(loss.detach(), weight=len(images))
        if per_image:
            losses, confusions = self.per_image(logits.detach(), predicted, masks)
            self._image_losses.append(losses)
            self._confusions.append(confusions)
        return loss

    def per_image(self, logits: Tensor, predicted: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """Each image's mean pixel loss and its (true, predicted) confusion matrix of pixels."""
        ignore, classes = self.hparams.ignore_index, self.hparams.num_classes
        pixel_losses = cross_entropy(logits, masks, ignore_index=ignore, reduction="none")
        valid = masks != ignore
        losses = pixel_losses.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1)
        image = torch.arange(len(masks), device=masks.device)[:, None, None].expand_as(masks)
        codes = (image * classes + masks) * classes + predicted
        counts = torch.bincount(codes[valid], minlength=len(masks) * classes * classes)
        return losses, counts.view(len(masks), classes, classes)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, self.eval_split, per_image=True)

    def _log_epoch(self, stage: str) -> None:
        self.log_epoch_metrics(stage, self.metrics[f"{stage}_"], self.losses[f"{stage}_"])

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_start(self) -> None:
        self._image_losses, self._confusions = [], []

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.eval_split)
        losses, confusions = gathered(self._image_losses), gathered(self._confusions)
        self._image_losses, self._confusions = [], []
        self.split_errors, self.split_outcomes = {}, {}
        if losses is not None:
            self.split_errors = segmentation_errors(
                self.eval_split, losses, confusions, self.hparams.ignore_index
            )
            self.split_outcomes = {
                "kind": "segmentation",
                "loss": losses.float(),
                "confusion": confusions.int(),
                "ignore_index": int(self.hparams.ignore_index),
            }

    @torch.no_grad()
    def save_pictures(self, datamodule: Any, output_dir: Path, title: str = "") -> Path:
        """predictions.png: image, true mask and predicted mask for a few validation images."""
        from practicum.tasks.pictures import segmentation_picture

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


def segmentation_errors(
    stage: str, losses: Tensor, confusions: Tensor, ignore_index: int
) -> dict[str, float]:
    """Standard errors of a split's loss (a mean over images) and of mIoU and pixel accuracy (a
    bootstrap over images: pixels of one image are not independent, images are)."""
    flat = confusions.flatten(1).double()

    def scores(indices: Tensor) -> Tensor:
        confusion = flat[indices].sum(0).view_as(confusions[0])
        pixel_acc = confusion.trace() / confusion.sum().clamp_min(1)
        return torch.stack([mean_iou(confusion, ignore_index), pixel_acc])

    miou, pixel_acc = bootstrap_errors(len(confusions), scores).tolist()
    return finite_errors(
        {
            f"{stage}/loss": mean_error(losses),
            f"{stage}/miou": miou,
            f"{stage}/pixel_acc": pixel_acc,
        }
    )


def mean_iou(confusion: Tensor, ignore_index: int) -> Tensor:
    """Mean IoU of a (true, predicted) confusion matrix, as torchmetrics' MulticlassJaccardIndex
    averages it: classes absent from both, and an ignored class, are left out of the mean."""
    hits = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - hits
    counted = confusion.sum(0) + confusion.sum(1) > 0
    if 0 <= ignore_index < len(confusion):
        counted[ignore_index] = False
    if not counted.any():
        return torch.zeros((), dtype=confusion.dtype)
    return (hits[counted] / union[counted]).mean()
