"""Callbacks that signal their own process at a chosen training step, as a user's Ctrl-C or a
scheduler's SIGTERM would arrive: trusted in tests with PRACTICUM_TRUST=interrupts."""

from __future__ import annotations

import os
import signal

from lightning.pytorch.callbacks import Callback


class SignalAt(Callback):
    def __init__(self, step: int, signum: str = "SIGINT") -> None:
        self.step, self.signum = step, getattr(signal, signum)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:  # while this step trains
            os.kill(os.getpid(), self.signum)


class MistakeAt(Callback):
    """A mistake in the user's files found at a chosen step (an image in a later batch that
    decodes only in part), as a data loader would raise it: while the file `broken` exists."""

    def __init__(self, step: int, broken: str) -> None:
        self.step, self.broken = step, broken

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and os.path.exists(self.broken):
            from practicum.errors import UserError

            raise UserError(f"{self.broken} is an unreadable file: replace or remove it")
