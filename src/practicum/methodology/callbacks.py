"""Callbacks that carry the goal into training, and record what the diagnosis reads of it."""

from __future__ import annotations

import functools
import time

import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from torch import Tensor

from practicum.methodology.code_facts import (
    CodeFacts,
    first_facts,
    gradient_facts,
    optimized_parameters,
    parameter_facts,
)
from practicum.methodology.unit_probe import count, gather, layers_off, probe_pass


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
        device = self.pending[-1].device  # steps loaded from a checkpoint are on the CPU
        values = torch.stack([loss.to(device) for loss in self.pending]).float().cpu().tolist()
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
        # the steps of an epoch still running when a checkpoint is saved in its middle
        pending = [loss.detach().cpu() for loss in self.pending]
        return {
            "first": self.first,
            "last": self.last,
            "steps_per_epoch": self.steps_per_epoch,
            "pending": pending,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.pending = list(state_dict.get("pending", []))
        self.first = list(state_dict.get("first", []))
        self.last = list(state_dict.get("last", []))
        self.steps_per_epoch = int(state_dict.get("steps_per_epoch", 0))


class CodeFactsRecorder(Callback):
    """The code facts of a run (code_facts.py), cheaply: parameters, outputs, determinism and
    input scale on the first batch, gradients after the first step, and dead or saturated units
    on the first UNIT_EXAMPLES training examples at the first epoch and again when training ends.
    Saved in checkpoints, so a resumed run keeps what its first epoch showed."""

    UNIT_EXAMPLES = 64

    def __init__(self, probe: bool = True) -> None:
        self.probe = probe  # off: parameters and gradients only (a compiled net)
        self.facts: CodeFacts | None = None
        self.units_counted = False
        self.gradients_read = False
        self.kept: list = []  # the inputs units are counted on, until there are enough
        self.kept_enough = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.facts is not None and (not self.probe or self.kept_enough):
            return  # every step after the first few: nothing to do
        if not callable(getattr(pl_module, "probe_inputs", None)):
            self.probe = False  # a LightningModule of the user's own, not a tasks.base.Task
            if self.facts is None:
                self.facts = CodeFacts()
                parameter_facts(pl_module, optimized_parameters(trainer.optimizers), self.facts)
            return
        started = time.perf_counter()
        inputs = pl_module.probe_inputs(batch)
        if self.facts is None:
            optimized = optimized_parameters(trainer.optimizers)
            if self.probe:
                self.facts, _ = first_facts(pl_module, inputs, optimized, trainer.datamodule)
            else:
                self.facts = CodeFacts()
                parameter_facts(pl_module.net, optimized, self.facts)
        if self.probe:
            self.kept.append(_detached(inputs))
            self.kept_enough = sum(count(x) for x in self.kept) >= self.UNIT_EXAMPLES
            if self.kept_enough and not self.units_counted:
                self._count_units(pl_module, first=True)
        self.facts.seconds += time.perf_counter() - started

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # a manual optimization (a GAN's two optimizers) clears one net's gradients for the other
        if self.gradients_read or self.facts is None or not pl_module.automatic_optimization:
            return
        self.gradients_read = True
        optimized = optimized_parameters(trainer.optimizers)
        self.facts.no_gradient = gradient_facts(getattr(pl_module, "net", pl_module), optimized)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.kept and not self.units_counted:  # an epoch of fewer examples than UNIT_EXAMPLES
            self._count_units(pl_module, first=True)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.kept and self.facts is not None:
            started = time.perf_counter()
            self._count_units(pl_module, first=False)
            self.facts.seconds += time.perf_counter() - started

    def _count_units(self, pl_module, first: bool) -> None:
        inputs = gather(self.kept)
        layers = layers_off(probe_pass(pl_module, inputs))
        if first:
            self.facts.units_first, self.facts.examples = layers, count(inputs)
            self.units_counted = True
        else:
            self.facts.units_last = layers

    def state_dict(self) -> dict:
        state = {"units_counted": self.units_counted, "gradients_read": self.gradients_read}
        return {**state, "facts": None if self.facts is None else self.facts.as_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.facts = CodeFacts.from_dict(state_dict.get("facts"))
        self.units_counted = bool(state_dict.get("units_counted", False))
        self.gradients_read = bool(state_dict.get("gradients_read", False))


def _detached(inputs):
    """A copy of a batch's inputs that training cannot change (an in-place first layer)."""
    if isinstance(inputs, Tensor):
        return inputs.detach().clone()
    if isinstance(inputs, tuple):
        return tuple(_detached(part) for part in inputs)
    return [_detached(item) for item in inputs] if isinstance(inputs, list) else inputs
