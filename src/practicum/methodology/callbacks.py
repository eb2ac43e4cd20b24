"""Callbacks that carry the goal into training."""

from __future__ import annotations

import functools

from lightning.pytorch.callbacks import EarlyStopping


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
