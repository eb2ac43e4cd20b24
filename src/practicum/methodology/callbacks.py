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
