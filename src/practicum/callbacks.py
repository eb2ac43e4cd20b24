"""The progress bar: Lightning's rich bar, with per-batch work cut to what changes per batch.

Lightning's `RichProgressBar` rebuilds its metrics column after every training batch (reading every
logged value back to the host) and, when the run ends, waits for its redraw thread to finish a
sleep of up to one redraw interval. practicum logs its metrics once per epoch, so the column can
only change at the end of an epoch or a validation pass: this bar refreshes it there, advances the
batch counters in between, and stops its redraw thread without waiting out the sleep. On a small
model that is several percent of the fit time; what the user sees is the same bar.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress import rich_progress


class _RedrawThread(rich_progress._RefreshThread):
    """Redraws when asked, at most `refresh_per_second` times a second; stops without delay."""

    def run(self) -> None:
        while not self.done.wait(1 / self.refresh_per_second):
            if self.refresh_cond:
                with self.live._lock:
                    if not self.done.is_set():
                        self.live.refresh()
                self.refresh_cond = False


class ProgressBar(RichProgressBar):
    """`RichProgressBar` whose metrics column is updated at epoch ends, not after every batch."""

    def _init_progress(self, trainer: pl.Trainer) -> None:
        started = self.progress
        super()._init_progress(trainer)
        live = getattr(self.progress, "live", None)
        thread = getattr(live, "_refresh_thread", None)
        if self.progress is started or not isinstance(thread, rich_progress._RefreshThread):
            return
        if type(thread) is not _RedrawThread:
            # Lightning's thread sleeps a whole interval between checks; it exits at its next wake
            thread.stop()
            live._refresh_thread = _RedrawThread(live, thread.refresh_per_second)
            live._refresh_thread.start()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not self.is_disabled and self.train_progress_bar_id is None:
            # resuming from a checkpoint saved mid-epoch
            self._initialize_train_progress_bar_id()
        self._update(self.train_progress_bar_id, batch_idx + 1)
        self.val_progress_bar_id = None
        self.test_progress_bar_id = None
        self.predict_progress_bar_id = None
