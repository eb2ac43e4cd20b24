"""Callbacks that carry the goal into training."""

from __future__ import annotations

import functools

import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from torch import Tensor


class GoalEarlyStopping(EarlyStopping):
    """Early stopping on the goal metric; with `stop_when_met`, also stop as soon as the target is reached."""

    def __init__(self, target: float | None = None, stop_when_met: bool = False, **kwargs) -> None:
        if stop_when_met and target is not None:
            kwargs["stopping_threshold"] = target
        super().__init__(**kwargs)

    @functools.cached_property
    def state_key(self) -> str:
        # Lightning formats this name around every hook call, dozens of times a step; the monitor
        # and mode it is made of are fixed when the callback is built
        return super().state_key

    # set by a run that resumes in its own directory: a run this callback had stopped (then
    # interrupted while it was being evaluated) stays stopped instead of training on
    stay_stopped = False
    stopped = False

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        if self.stay_stopped and self.stopped:
            trainer.should_stop = True

    def on_validation_end(self, trainer, pl_module) -> None:
        before = trainer.should_stop
        super().on_validation_end(trainer, pl_module)
        self.stopped = self.stopped or (trainer.should_stop and not before)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        before = trainer.should_stop
        super().on_train_epoch_end(trainer, pl_module)
        self.stopped = self.stopped or (trainer.should_stop and not before)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "stopped": self.stopped}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.stopped = bool(state_dict.get("stopped", False))


class StepLosses(Callback):
    """The training loss of each step of the first and of the latest epoch: the within-epoch curve
    and the loss at initialization that the diagnosis reads (a run of one or two epochs has
    no epoch curve to speak of). Kept on the device during an epoch, read once at its end, and
    saved in checkpoints, so a resumed run still knows where it started."""

    MOST = 4096  # steps kept per epoch: enough for a trend, small in a checkpoint

    def __init__(self) -> None:
        self.pending: list[Tensor] = []
        self.first: list[float] = []
        self.last: list[float] = []
        self.steps_per_epoch = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, Tensor) and len(self.pending) < self.MOST:
            self.pending.append(loss.detach())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self.pending:
            return
        values = torch.stack(self.pending).float().cpu().tolist()
        self.pending.clear()
        self.steps_per_epoch = len(values)
        if not self.first:
            self.first = values
        self.last = values

    @property
    def init_loss(self) -> float | None:
        """The loss of the first step, before any update: what the initial model scores."""
        return self.first[0] if self.first else None

    def state_dict(self) -> dict:
        return {"first": self.first, "last": self.last, "steps_per_epoch": self.steps_per_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.first = list(state_dict.get("first", []))
        self.last = list(state_dict.get("last", []))
        self.steps_per_epoch = int(state_dict.get("steps_per_epoch", 0))
