"""Classification: one task for every classifier net (linear, MLP, CNN, ...)."""

from __future__ import annotations

from typing import Annotated, Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from practicum.config.constraints import Fraction
from practicum.config.goal import cost, share
from practicum.errors import UserError
from practicum.tasks.base import OptimizerFactory, Task
from practicum.tasks.noise import bootstrap_errors, finite_errors, gathered, mean_error

STAGES = ("train", "val", "test")
LOSSES = ("cross_entropy", "hinge")


class ClassificationTask(Task):
    """Cross-entropy (or multi-class hinge) loss; accuracy and macro F1 per stage."""

    problem = "classification"
    logged_metrics = (cost("loss"), share("acc"), share("f1"))

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: dict[str, Any] | None = None,
        loss: str = "cross_entropy",
        label_smoothing: Annotated[float, Fraction] = 0.0,
    ) -> None:
        super().__init__(net, optimizer, scheduler)
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.criterion = _make_loss(loss, label_smoothing)
        # the same loss per example, for its standard error when testing
        self.example_criterion = _make_loss(loss, label_smoothing, reduction="none")
        metrics = MetricCollection(
            {
                # labels are checked once, against num_classes, when the data loads
                "acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False),
                "f1": MulticlassF1Score(num_classes, average="macro", validate_args=False),
            }
        )
        # ModuleDict keys cannot be "train" (nn.Module.train), hence the suffix
        self.metrics = nn.ModuleDict({f"{s}_": metrics.clone(prefix=f"{s}/") for s in STAGES})
        # NaN must reach the epoch mean (it means divergence), and the check would cost every step
        self.losses = nn.ModuleDict({f"{s}_": MeanMetric(nan_strategy="disable") for s in STAGES})
        # per-step outputs, fed to the metrics once per epoch: one update instead of one per step
        self._epoch_outputs: dict[str, EpochBuffer] = {stage: EpochBuffer() for stage in STAGES}

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _shared_step(
        self, batch: tuple[Tensor, Tensor], stage: str, per_example: bool = False
    ) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        losses = self.example_criterion(logits.detach(), y) if per_example else None
        self._epoch_outputs[stage].add(logits.detach().argmax(dim=-1), y, loss.detach(), losses)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, self.eval_split, per_example=True)

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return torch.softmax(self(x), dim=-1)

    def _log_epoch(self, stage: str) -> None:
        metrics, loss = self.metrics[f"{stage}_"], self.losses[f"{stage}_"]
        buffer = self._epoch_outputs[stage]
        if buffer.count:
            preds, targets, mean_loss = buffer.drain()
            metrics.update(preds, targets)
            loss.update(mean_loss, weight=len(targets))
        self.log_epoch_metrics(stage, metrics, loss)

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        stage, buffer = self.eval_split, self._epoch_outputs[self.eval_split]
        preds, targets = gathered(buffer.preds), gathered(buffer.targets)
        losses = gathered(buffer.losses)
        self._log_epoch(stage)
        self.split_errors = {}
        if targets is not None and losses is not None:
            self.split_errors = classification_errors(
                stage, preds, targets, losses, self.hparams.num_classes
            )


class EpochBuffer:
    """Predicted classes, targets and the loss sum of one epoch, kept on the device, no host sync;
    per-example losses too when given (testing)."""

    def __init__(self) -> None:
        self.preds: list[Tensor] = []
        self.targets: list[Tensor] = []
        self.losses: list[Tensor] = []
        self.loss_sum: Tensor | float = 0.0
        self.count = 0

    def add(
        self, preds: Tensor, targets: Tensor, loss: Tensor, losses: Tensor | None = None
    ) -> None:
        self.preds.append(preds)
        self.targets.append(targets)
        if losses is not None:
            self.losses.append(losses)
        self.loss_sum = self.loss_sum + loss * len(targets)
        self.count += len(targets)

    def drain(self) -> tuple[Tensor, Tensor, Tensor]:
        """Everything added since the last drain, with the mean loss; the buffer starts empty again."""
        out = torch.cat(self.preds), torch.cat(self.targets), self.loss_sum / self.count
        self.__init__()
        return out


def classification_errors(
    stage: str, preds: Tensor, targets: Tensor, losses: Tensor, num_classes: int
) -> dict[str, float]:
    """Standard errors of a split's accuracy and loss (means over examples) and macro F1 (bootstrap)."""
    correct = (preds == targets).double()
    # each example's cell of the confusion matrix
    codes = targets.long() * num_classes + preds.long()

    def f1(indices: Tensor) -> Tensor:
        counts = torch.bincount(codes[indices], minlength=num_classes**2)
        return macro_f1(counts.view(num_classes, num_classes))

    return finite_errors(
        {
            f"{stage}/acc": mean_error(correct),
            f"{stage}/loss": mean_error(losses),
            f"{stage}/f1": float(bootstrap_errors(len(codes), f1)[0]),
        }
    )


def macro_f1(confusion: Tensor) -> Tensor:
    """Macro F1 of a (target, predicted) confusion matrix, as torchmetrics' MulticlassF1Score
    averages it: classes never predicted nor present are left out of the mean."""
    confusion = confusion.double()
    hits = confusion.diagonal()
    predicted_and_actual = confusion.sum(0) + confusion.sum(1)  # 2 tp + fp + fn
    present = predicted_and_actual > 0
    scores = 2 * hits[present] / predicted_and_actual[present]
    return scores.mean().reshape(1) if len(scores) else torch.zeros(1, dtype=torch.float64)


def _make_loss(name: str, label_smoothing: float, reduction: str = "mean") -> nn.Module:
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing, reduction=reduction)
    if name == "hinge":
        # the multi-class linear SVM loss (Weston & Watkins)
        return nn.MultiMarginLoss(reduction=reduction)
    raise UserError(f"model.loss={name!r} is invalid: use one of {', '.join(LOSSES)}")
