"""Object detection: one task for every torchvision detector (Faster R-CNN, RetinaNet, FCOS).

The detector computes its own losses in train mode and returns boxes in eval mode. Metrics: COCO
mAP (`map`, over IoU 0.5:0.95), `map_50`, `map_75` and `mar_100` from torchmetrics'
MeanAveragePrecision, on val/test (and on train in the evaluation after fit; not per training
epoch, where it would cost a second pass over the training set).

Validation loss: torchvision detectors return losses only in train mode, so val/test run the net
twice per batch: in eval mode for the boxes that the metrics score, and in train mode under
no_grad with every batch-norm layer kept in eval mode (nothing is updated) for the loss. That loss
is the training objective on held-out images; its proposal sampling is random, like in training.
Each loss component is logged too (`val/loss_classifier`, `val/loss_box_reg`, ...).

Standard errors (tasks/noise.py), measured only in `test_step`, i.e. in the evaluation after fit:
there the loss pass runs image by image, so each image has its own losses (their mean is the
logged loss; the batched pass averages the same per-image samples), and the loss terms get
std / sqrt(n). mAP is not a mean over images: its error is the spread of torchmetrics' mAP over
`MAP_RESAMPLES` bootstrap resamples of the images with their stored predictions, on val and test
only (each resample is a full COCO evaluation; the training split is the largest and no goal
compares it across splits).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
from torch import Tensor, nn
from torchmetrics.detection import MeanAveragePrecision

from practicum.config.constraints import Fraction, PositiveInt
from practicum.config.goal import cost, share
from practicum.tasks.base import OptimizerFactory, Task
from practicum.tasks.noise import across_processes, bootstrap_errors, finite_errors, mean_error

# torch's batch-norm layers, named one by one: their common base class is private
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

STAGES = ("train", "val", "test")
Batch = tuple[list[Tensor], list[dict[str, Tensor]]]
REPORTED = ("map", "map_50", "map_75", "mar_100")
# the loss terms torchvision's detectors return: Faster R-CNN's, then RetinaNet's and FCOS's
LOSS_TERMS = (
    "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg",
    "classification", "bbox_regression", "bbox_ctrness",
)  # fmt: skip
# each resample is one COCO evaluation of the split (about 0.5 s per 100 images on a CPU)
MAP_RESAMPLES = 30


class DetectionTask(Task):
    """Summed torchvision detection losses; mAP per stage; a picture of predictions after fit."""

    problem = "detection"
    # mAP needs a pass over the boxes: measured on val during training, on train only after it
    logged_metrics = (
        cost("loss"),
        *(cost(term) for term in LOSS_TERMS),
        *(share(name, splits=("val",)) for name in REPORTED),
    )

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: dict[str, Any] | None = None,
        picture_images: Annotated[int, PositiveInt] = 6,
        picture_score: Annotated[float, Fraction] = 0.5,
    ) -> None:
        super().__init__(net, optimizer, scheduler)
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        # every stage that measures boxes; train only in the evaluation after fit (eval_split)
        self.maps = nn.ModuleDict({f"{s}_": MeanAveragePrecision(iou_type="bbox") for s in STAGES})
        self._loss_sums: dict[str, dict[str, Tensor]] = {s: {} for s in STAGES}
        self._loss_counts = dict.fromkeys(STAGES, 0)
        # per image while testing: its losses, its detections and its true boxes (on the CPU)
        self._images: list[dict[str, Any]] = []

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        return self.net(images)

    def probe_loss(self, batch: Batch) -> Tensor:
        images, targets = batch
        return sum(self.net(images, targets).values())

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        images, targets = batch
        losses = self.net(images, targets)
        loss = sum(losses.values())
        self._add_losses("train", losses, loss, len(images))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, self.eval_split, per_image=True)

    def _evaluate(self, batch: Batch, stage: str, per_image: bool = False) -> None:
        images, targets = batch
        detections = self.net(images)
        self.maps[f"{stage}_"].update(detections, targets)
        if per_image:
            losses = self.losses_per_image(images, targets, detections)
        else:
            losses = self.held_out_losses(images, targets)
        self._add_losses(stage, losses, sum(losses.values()), len(images))

    def losses_per_image(
        self, images: list[Tensor], targets: list[dict], detections: list[dict]
    ) -> dict[str, Tensor]:
        """The held-out losses image by image, kept with each image's detections and true boxes
        for the standard errors; returns their means over the batch."""
        each = [self.held_out_losses([x], [t]) for x, t in zip(images, targets, strict=True)]
        for losses, detection, target in zip(each, detections, targets, strict=True):
            terms = {name: float(value) for name, value in losses.items()}
            self._images.append(
                {
                    "losses": {"loss": sum(terms.values()), **terms},
                    "detection": {k: v.detach().cpu() for k, v in detection.items()},
                    "target": {k: target[k].cpu() for k in ("boxes", "labels")},
                }
            )
        return {name: torch.stack([one[name] for one in each]).mean() for name in each[0]}

    def held_out_losses(self, images: list[Tensor], targets: list[dict]) -> dict[str, Tensor]:
        """The training losses on these images without changing the net (see the module docstring)."""
        was_training = self.net.training
        self.net.train()
        for module in self.net.modules():
            if isinstance(module, BATCH_NORMS):
                module.eval()
        try:
            with torch.no_grad():
                return self.net(images, targets)
        finally:
            self.net.train(was_training)

    def _add_losses(self, stage: str, losses: dict[str, Tensor], loss: Tensor, n: int) -> None:
        sums = self._loss_sums[stage]
        for name, value in {"loss": loss, **losses}.items():
            sums[name] = sums.get(name, 0.0) + value.detach() * n
        self._loss_counts[stage] += n

    def _log_epoch(self, stage: str, with_map: bool) -> None:
        count = max(self._loss_counts[stage], 1)
        values = {f"{stage}/{k}": v / count for k, v in self._loss_sums[stage].items()}
        if with_map:
            metric = self.maps[f"{stage}_"]
            scores = metric.compute()
            values.update({f"{stage}/{k}": scores[k].float() for k in REPORTED})
            metric.reset()
        self.log_dict(values, prog_bar=stage == "val", batch_size=count)
        if stage == "train" and "train/loss" in values:
            self.stop_if_diverged(values["train/loss"])
        self._loss_sums[stage], self._loss_counts[stage] = {}, 0

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train", with_map=False)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val", with_map=True)

    def on_test_epoch_start(self) -> None:
        self._images = []

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.eval_split, with_map=True)
        images = [one for part in across_processes(self._images) for one in part]
        self._images = []
        self.split_errors = detection_errors(self.eval_split, images) if images else {}

    @torch.no_grad()
    def save_pictures(self, datamodule: Any, output_dir: Path, title: str = "") -> Path:
        """predictions.png: predicted boxes with labels and scores beside the true boxes."""
        from practicum.tasks.pictures import detection_picture

        was_training = self.net.training
        self.net.eval()
        dataset = datamodule.splits["val"]
        examples = [dataset[i] for i in range(min(self.hparams.picture_images, len(dataset)))]
        images = [image.to(self.device) for image, _ in examples]
        detections = [{k: v.cpu() for k, v in d.items()} for d in self.net(images)]
        self.net.train(was_training)
        return detection_picture(
            [image for image, _ in examples],
            detections,
            [target for _, target in examples],
            datamodule.class_names,
            self.hparams.picture_score,
            output_dir / "predictions.png",
            title,
        )


def detection_errors(stage: str, images: list[dict[str, Any]]) -> dict[str, float]:
    """Standard errors of a split's losses (means over images) and, on val and test, of its mAP
    values (a bootstrap over images)."""
    names = images[0]["losses"].keys()
    errors = {
        f"{stage}/{name}": mean_error(torch.tensor([one["losses"][name] for one in images]))
        for name in names
    }
    if stage != "train":

        def scores(indices: Tensor) -> Tensor:
            metric = MeanAveragePrecision(iou_type="bbox", sync_on_compute=False)
            chosen = [images[i] for i in indices.tolist()]
            metric.update([one["detection"] for one in chosen], [one["target"] for one in chosen])
            values = metric.compute()
            return torch.stack([values[name].double() for name in REPORTED])

        spread = bootstrap_errors(len(images), scores, resamples=MAP_RESAMPLES)
        errors.update(
            {f"{stage}/{name}": float(v) for name, v in zip(REPORTED, spread, strict=True)}
        )
    return finite_errors(errors)
