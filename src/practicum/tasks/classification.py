"""Classification: one task for every classifier net (linear, MLP, CNN, ...)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import MeanMetric, Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from practicum.config.constraints import Constraint, Fraction
from practicum.config.goal import cost, share
from practicum.errors import UserError
from practicum.tasks.base import OptimizerFactory, Task
from practicum.tasks.noise import bootstrap_errors, finite_errors, gathered, mean_error

STAGES = ("train", "val", "test")
LOSSES = ("cross_entropy", "hinge")
WEIGHT_KEY = "criterion.weight"  # the class weights in a checkpoint's state dict


def _weights_allowed(value: Any) -> bool:
    if value == "balanced":
        return True
    numbers = isinstance(value, list | tuple) and all(
        isinstance(w, int | float) and not isinstance(w, bool) for w in value
    )
    return numbers and bool(value) and all(0 < w < float("inf") for w in value)


CLASS_WEIGHTS = Constraint(
    "must be balanced, null, or a list of numbers > 0, one per class", _weights_allowed, "balanced"
)


class ClassificationTask(Task):
    """Cross-entropy (or multi-class hinge) loss; accuracy and macro F1 per stage."""

    problem = "classification"
    logged_metrics = (cost("loss"), share("acc"), share("f1"))
    score_kind = "logits"

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: dict[str, Any] | None = None,
        loss: str = "cross_entropy",
        label_smoothing: Annotated[float, Fraction] = 0.0,
        class_weights: Annotated[str | list[float] | None, CLASS_WEIGHTS] = None,
    ) -> None:
        super().__init__(net, optimizer, scheduler)
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        # the weights are the criterion's buffer: they follow the task's device and dtype, and a
        # checkpoint carries them, so evaluation needs no training labels
        self.criterion = _make_loss(
            loss, label_smoothing, initial_weights(class_weights, num_classes)
        )
        metrics = MetricCollection(
            {
                # labels are checked once, against num_classes, when the data loads
                "acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False),
                "f1": MacroF1(num_classes),
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

    def probe_loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        return self.criterion(self.net(x), y)

    def setup(self, stage: str) -> None:
        if self.hparams.class_weights == "balanced":
            self._balance(stage)

    def _balance(self, stage: str) -> None:
        """Weights from the training labels of the data module; evaluation without one keeps the
        weights its checkpoint holds."""
        datamodule = self.trainer.datamodule
        if not hasattr(datamodule, "labels"):
            if stage != "fit":
                return
            raise UserError(
                "model.class_weights=balanced reads the training labels from the data module: "
                "pass datamodule= to trainer.fit, or give the weights as a list"
            )
        weights = balanced_weights(datamodule.labels("train"), self.hparams.num_classes)
        self.criterion.weight = weights.to(self.criterion.weight)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state, weight = checkpoint.get("state_dict", {}), self.criterion.weight
        trainer = self.attached_trainer()
        # a checkpoint of other (or no) class weights: training on from it uses this config's,
        # evaluation the checkpoint's
        if weight is None:
            state.pop(WEIGHT_KEY, None)
        elif WEIGHT_KEY not in state or (trainer is not None and trainer.state.fn == "fit"):
            state[WEIGHT_KEY] = weight

    def _shared_step(
        self, batch: tuple[Tensor, Tensor], stage: str, per_example: bool = False
    ) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        losses = example_losses(self.criterion, logits.detach(), y) if per_example else None
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
        self.split_errors, self.split_outcomes = {}, {}
        if targets is not None and losses is not None:
            self.split_errors = classification_errors(
                stage, preds, targets, losses, self.hparams.num_classes
            )
            self.split_outcomes = {
                "kind": "classification",
                "acc": (preds.long() == targets.long()).float(),
                "loss": losses.float(),
                "pred": preds.int(),
                "target": targets.int(),
                "num_classes": int(self.hparams.num_classes),
            }


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
    """Standard errors of a split's accuracy and loss (means over examples) and macro F1 (bootstrap).

    Each resample's macro F1 counts per class (hits, predicted, actual): time and memory grow with
    examples + classes, not with the classes squared of a confusion matrix."""
    preds, targets = preds.long(), targets.long()
    correct = preds == targets

    def f1(indices: Tensor) -> Tensor:
        predicted, actual, hit = preds[indices], targets[indices], correct[indices]
        hits = torch.bincount(actual[hit], minlength=num_classes)
        counts = torch.bincount(predicted, minlength=num_classes)
        counts += torch.bincount(actual, minlength=num_classes)
        return class_mean_f1(hits, counts)

    return finite_errors(
        {
            f"{stage}/acc": mean_error(correct.double()),
            f"{stage}/loss": mean_error(losses),
            f"{stage}/f1": float(bootstrap_errors(len(targets), f1)[0]),
        }
    )


def macro_f1(confusion: Tensor) -> Tensor:
    """Macro F1 of a (target, predicted) confusion matrix, as torchmetrics' MulticlassF1Score
    averages it: classes never predicted nor present are left out of the mean."""
    return class_mean_f1(confusion.diagonal(), confusion.sum(0) + confusion.sum(1))


class MacroF1(Metric):
    """Macro F1 as torchmetrics' MulticlassF1Score(average="macro") computes it (classes neither
    predicted nor present are left out of the mean), from per-class counts: time and memory grow
    with the examples plus the classes. MulticlassF1Score counts a classes x classes confusion
    matrix at every update: 0.57 s and 800 MB per update at 10,000 classes."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        zeros = torch.zeros(self.num_classes, dtype=torch.long)
        self.add_state("hits", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("predicted_and_actual", default=zeros.clone(), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        preds, target = preds.long().flatten(), target.long().flatten()
        hit = preds == target
        self.hits += torch.bincount(target[hit], minlength=self.num_classes)
        self.predicted_and_actual += torch.bincount(preds, minlength=self.num_classes)
        self.predicted_and_actual += torch.bincount(target, minlength=self.num_classes)

    def compute(self) -> Tensor:
        return class_mean_f1(self.hits, self.predicted_and_actual)[0].float()


def class_mean_f1(hits: Tensor, predicted_and_actual: Tensor) -> Tensor:
    """Macro F1 from each class's true positives and its predicted + actual count (2 tp + fp + fn),
    over the classes that are predicted or present."""
    hits, predicted_and_actual = hits.double(), predicted_and_actual.double()
    present = predicted_and_actual > 0
    scores = 2 * hits[present] / predicted_and_actual[present]
    return scores.mean().reshape(1) if len(scores) else torch.zeros(1, dtype=torch.float64)


def initial_weights(class_weights: str | list[float] | None, num_classes: int) -> Tensor | None:
    """The criterion's weights when the task is built: a list as given, ones until `balanced` reads
    the training labels (or a checkpoint's weights load), None for an unweighted loss."""
    if class_weights is None:
        return None
    if class_weights == "balanced":
        return torch.ones(num_classes)
    if len(class_weights) != num_classes:
        raise UserError(
            f"model.class_weights has {len(class_weights)} weights but the data has {num_classes} "
            f"classes: give one weight per class, or model.class_weights=balanced"
        )
    return torch.tensor(class_weights, dtype=torch.float32)


def balanced_weights(labels: np.ndarray, num_classes: int) -> Tensor:
    """scikit-learn's "balanced" class weights, n / (K * count of class c), of training labels."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    absent = np.flatnonzero(counts == 0)
    if absent.size:
        # its weight would be infinite, and any value is a guess: refused, not made up
        raise UserError(
            f"model.class_weights=balanced needs every class in the training split, and class "
            f"{int(absent[0])} has no training examples: add some, or give the weights as a list"
        )
    return torch.as_tensor(len(labels) / (num_classes * counts), dtype=torch.float32)


def example_losses(criterion: nn.Module, logits: Tensor, targets: Tensor) -> Tensor:
    """Each example's loss under the training criterion (its class weights and smoothing too)."""
    if isinstance(criterion, nn.MultiMarginLoss):
        return F.multi_margin_loss(logits, targets, weight=criterion.weight, reduction="none")
    return F.cross_entropy(
        logits,
        targets,
        weight=criterion.weight,
        label_smoothing=criterion.label_smoothing,
        reduction="none",
    )


def _make_loss(name: str, label_smoothing: float, weight: Tensor | None = None) -> nn.Module:
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
    if name == "hinge":
        # the multi-class linear SVM loss (Weston & Watkins)
        return nn.MultiMarginLoss(weight=weight)
    raise UserError(f"model.loss={name!r} is invalid: use one of {', '.join(LOSSES)}")
