"""What every task shares: optimizer/scheduler wiring and the config stored in each checkpoint."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from lightning_utilities.core.apply_func import apply_to_collection
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import Metric as TorchMetric

from practicum.config.goal import Metric
from practicum.data.position import batches_done
from practicum.platform.rng import RNG_KEY, restore_rng_state, rng_state

OptimizerFactory = Callable[..., Optimizer]
CONFIG_KEY = "practicum_config"
# written by a checkpoint saved in the middle of an epoch: where it stands, and what the epoch has
# gathered so far (the task's epoch outputs, its metrics' states)
MID_EPOCH_KEY = "practicum_mid_epoch"
EPOCH_STATE_KEY = "practicum_epoch_state"


class Task(pl.LightningModule):
    """Subclasses build their loss and metrics; this class turns the config's factories into optimizers.

    The net and the factories are plain attributes, not hyperparameters: Hydra's partial factories
    cannot be pickled, so the resolved run config is stored in the checkpoint instead.

    What the run flow relies on is declared here: `diagnosis_kind` picks the diagnosis rules
    ("supervised", "vae", "gan"); `eval_split` names the split that `test_step` measures (the
    flow sets it to train, val and test in turn); `logged_metrics` lists what may be a goal;
    `split_errors` holds the standard error of each metric `test_step` measured on the last split
    (`val/acc`: 0.012, ...; see tasks/noise.py), which the evaluation gathers into
    `standard_errors`; `split_outcomes` its per-example outcomes (`{"kind": "classification",
    "acc": <0/1 per example>, ...}`), which the evaluation gathers into `example_outcomes`;
    `save_pictures` is optional.
    """

    # the kind of data the task learns from ("classification", "detection", ...); the config check
    # refuses data whose module declares another kind (SplitDataModule.problem)
    problem: ClassVar[str]
    # what it logs every epoch of training (`val/acc`, ...): what a goal or a monitor may name
    logged_metrics: ClassVar[tuple[Metric, ...]] = ()
    diagnosis_kind: ClassVar[str] = "supervised"
    eval_split: str = "test"

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_spec = scheduler or {}
        self.run_config: dict[str, Any] | None = None
        self.split_errors: dict[str, float] = {}
        self.standard_errors: dict[str, float] = {}
        # per-example outcomes of the last split `test_step` measured, from which each metric can
        # be recounted on any subset of the examples (methodology/paired.py); the evaluation
        # gathers them into `example_outcomes` by split
        self.split_outcomes: dict[str, Any] = {}
        self.example_outcomes: dict[str, dict[str, Any]] = {}

    # -- what the sanity checks and the run's code facts probe (methodology/code_facts.py) -------
    # what the loss reads the net's scores as: "logits" (one per class on dim 1, the softmax is the
    # loss's), "binary" (one logit per value, the sigmoid is the loss's), or None (no scores)
    score_kind: ClassVar[str | None] = None

    def probe_inputs(self, batch: Any) -> Any:
        """What the net is called with for a training batch."""
        return batch[0]

    def probe(self, inputs: Any) -> tuple[Any, Tensor | None]:
        """The net's outputs for `inputs`, and the part of them the loss reads as scores."""
        outputs = self.net(inputs)
        return outputs, outputs if self.score_kind else None

    def probe_loss(self, batch: Any) -> Tensor:
        """The training loss of one batch, without training_step's logging and metric updates."""
        raise NotImplementedError(f"{type(self).__name__} does not implement probe_loss(batch)")

    def save_pictures(self, datamodule: Any, output_dir: Path, title: str = "") -> Path | None:
        """Pictures of the best checkpoint in the run directory (e.g. predictions on validation
        images); tasks without pictures keep this default, which draws nothing."""
        return None

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Biases and normalization weights (1-D tensors) are exempt from weight decay."""
        decay, no_decay = [], []
        for param in self.parameters():
            if param.requires_grad:
                (no_decay if param.ndim <= 1 else decay).append(param)
        groups = [{"params": decay}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        return groups

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise RuntimeError(
                "this task was built without an optimizer; pass optimizer= to train it"
            )
        optimizer = self.optimizer_factory(self.parameter_groups())
        if not optimizer.defaults.get("weight_decay"):
            # nothing decays, so nothing needs exempting: one group is one pass per step, not two
            optimizer = self.optimizer_factory([p for p in self.parameters() if p.requires_grad])
        factory = self.scheduler_spec.get("factory")
        if factory is None:
            return optimizer
        kwargs = {}
        if "total_steps" in inspect.signature(factory).parameters:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = {
            "scheduler": factory(optimizer, **kwargs),
            "interval": self.scheduler_spec.get("interval", "epoch"),
        }
        if self.scheduler_spec.get("monitor"):
            scheduler["monitor"] = self.scheduler_spec["monitor"]
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def log_epoch_metrics(self, stage: str, metrics: Any, loss: Any) -> dict[str, Tensor]:
        """Log a stage's epoch metrics and mean loss, then reset both for the next epoch.

        compute() syncs the metric states across processes under DDP; a non-finite training loss
        stops the run."""
        values = metrics.compute()
        values[f"{stage}/loss"] = loss.compute()
        self.log_dict(values, prog_bar=stage == "val")
        if stage == "train":
            self.stop_if_diverged(values["train/loss"])
        metrics.reset()
        loss.reset()
        return values

    def stop_if_diverged(self, epoch_loss: Tensor) -> None:
        """A non-finite epoch loss ends training: nothing useful can follow, and the report says why."""
        if not torch.isfinite(epoch_loss):
            self.trainer.should_stop = True

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        """Batches from in-memory tensors are already on the CPU: skip Lightning's walk over them."""
        if device.type == "cpu":
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
        # dropout, augmentation and shuffling continue exactly when the run resumes from here
        checkpoint[RNG_KEY] = rng_state()
        trainer = self.attached_trainer()
        done = batches_done(trainer)
        if done is not None:
            checkpoint[MID_EPOCH_KEY] = {
                "epoch": int(trainer.current_epoch),
                "batches_done": done,
                "batches": int(trainer.num_training_batches),
            }
            checkpoint[EPOCH_STATE_KEY] = self.epoch_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainer = self.attached_trainer()
        if trainer is None or trainer.state.fn != "fit":
            return
        if RNG_KEY in checkpoint:
            restore_rng_state(checkpoint[RNG_KEY])
        if EPOCH_STATE_KEY in checkpoint:
            self.load_epoch_state(checkpoint[EPOCH_STATE_KEY])

    def epoch_state(self) -> dict[str, Any]:
        """What the training epoch has gathered so far: the per-step outputs a task keeps for its
        epoch metrics (`_epoch_outputs["train"]`) and the state of every metric updated since its
        last reset. A checkpoint saved in the middle of an epoch holds it, so the epoch's metrics
        come out as if it had never stopped."""
        state: dict[str, Any] = {"metrics": {}}
        buffers = getattr(self, "_epoch_outputs", None)
        if isinstance(buffers, dict) and "train" in buffers:
            state["train_outputs"] = dict(vars(buffers["train"]))
        for name, module in self.named_modules():
            if isinstance(module, TorchMetric) and module.update_count > 0:
                state["metrics"][name] = dict(module.metric_state)
        return state

    def load_epoch_state(self, state: dict[str, Any]) -> None:
        # a checkpoint loads onto the CPU; the epoch goes on where the task is
        state = apply_to_collection(state, Tensor, lambda t: t.to(self.device))
        buffers = getattr(self, "_epoch_outputs", None)
        if "train_outputs" in state and isinstance(buffers, dict) and "train" in buffers:
            vars(buffers["train"]).update(state["train_outputs"])
        modules = dict(self.named_modules())
        for name, values in state.get("metrics", {}).items():
            metric = modules.get(name)
            if isinstance(metric, TorchMetric):
                for key, value in values.items():
                    setattr(metric, key, value)

    def attached_trainer(self) -> pl.Trainer | None:
        """The Trainer running this task; None outside one (where `self.trainer` raises)."""
        try:
            return self.trainer
        except RuntimeError:
            return None
