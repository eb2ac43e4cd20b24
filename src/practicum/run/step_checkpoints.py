"""`last.ckpt` in the middle of an epoch: a long epoch stopped by a signal, a kill or a lost node
loses a few steps, not the epoch.

At the end of every epoch `last.ckpt` is written by the `last_checkpoint` callback. This one writes
the same file between two training steps of an epoch:

- at the first Ctrl-C or SIGTERM (and at SLURM's requeue signal, which submitit handles), at the
  step where training stands; then the run stops as an interrupted run does (its summary says
  `interrupted` and prints the command that resumes it), or submitit requeues the job. A second
  signal stops at once. A signal that comes in validation, or at an epoch's last step, stops the
  run at the start of the next epoch, after that epoch's own `last.ckpt`.
- every `every_s` seconds of training, against a SIGKILL or a lost node: the work lost is at most
  that interval.

A checkpoint saved mid-epoch holds, beside Lightning's loops, weights, optimizer and scheduler:
the random states (tasks/base.py), where the shuffled training batches stand (data/position.py),
and what the epoch has gathered so far (the task's epoch outputs, `StepLosses`' steps). Resuming it
(`ckpt_path=last`) ends bit-exact with the run that was never stopped.

Under DDP only the epoch-end checkpoints are written: a signal or a clock read by one process
alone cannot decide a save that every process must make at the same step.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from practicum.data.position import batches_done


class StepCheckpoint(Callback):
    def __init__(self, path: str, every_s: float | None = 1800.0, on_signal: bool = True) -> None:
        if every_s is not None and every_s <= 0:
            raise ValueError(f"every_s must be positive (seconds) or null, not {every_s}")
        self.path, self.every_s, self.on_signal = str(path), every_s, on_signal
        self.requested: int | None = None  # the signal that asked for a stop
        self.previous: dict[int, Any] = {}  # the handlers this callback stands in front of
        self.saved_at = 0.0
        self.active = False
        self.saves = 0  # mid-epoch checkpoints written

    # -- hooks ----------------------------------------------------------------------------------

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.saved_at = time.monotonic()
        self.active = trainer.world_size == 1
        if self.active and self.on_signal:
            self._catch_signals()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.requested is not None:  # last.ckpt holds the epoch that just ended
            self._stop(trainer)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        done = batches_done(trainer)
        if not self.active or done is None:
            return  # an epoch's last step: its own last.ckpt follows in a moment
        if done % trainer.accumulate_grad_batches:
            return  # gradients summed over batches, not stepped yet: saved after the step
        due = self.every_s is not None and time.monotonic() - self.saved_at >= self.every_s
        if self.requested is not None or due:
            for logger in trainer.loggers:  # metrics.csv as of this step, beside the checkpoint
                logger.save()
            trainer.save_checkpoint(self.path)
            self.saves += 1
            self.saved_at = time.monotonic()
        if self.requested is not None:
            self._stop(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.saved_at = time.monotonic()  # last.ckpt is written at every epoch's end

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.active = False
        self._release_signals()
        if self.requested is not None:  # training is over; the stop comes before evaluation
            self._forward(self.requested)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.active = False
        self._release_signals()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.active = False
        self._release_signals()

    # -- signals --------------------------------------------------------------------------------

    def _signals(self) -> list[int]:
        if os.environ.get("SLURM_JOB_ID"):
            # in a SLURM job submitit owns SIGTERM (ignored) and the requeue signal (USR2, or
            # SUBMITIT_PREEMPT_SIGNAL): that one is caught here first, and handed to submitit once
            # the checkpoint is written
            name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
            requeue = getattr(signal, f"SIG{name.removeprefix('SIG')}", None)
            return [requeue] if requeue and callable(signal.getsignal(requeue)) else []
        return [signal.SIGINT, signal.SIGTERM]

    def _catch_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self._signals():
            self.previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._caught)

    def _release_signals(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def _caught(self, signum: int, frame: Any) -> None:
        if self.requested is None and self.active:
            self.requested = signum  # acted on between two steps
            return
        self._forward(signum, frame)  # a second signal, or outside training: at once

    def _stop(self, trainer: pl.Trainer) -> None:
        signum = self.requested
        assert signum is not None
        self.active = False
        wait = getattr(trainer.strategy.checkpoint_io, "wait", None)
        if callable(wait):  # the checkpoint is on disk before the process may end
            wait()
        self._forward(signum)

    def _forward(self, signum: int, frame: Any = None) -> None:
        """What the signal would have done without this callback."""
        handler = self.previous.get(signum, signal.getsignal(signum))
        self._release_signals()
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_IGN:
            return
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:  # the default action: end the process by that signal
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
