"""Measured speedups that need a private name of Lightning or Rich: the one place such names appear.

The rest of practicum uses public APIs only (tests/test_stock_apis.py). A speedup stays here only
while `make bench` shows it saves at least 3% of the fit (benchmarks/README.md). Each one looks up
the names it needs when a run builds it, never at import, and gives the stock behaviour when one is
missing: a Lightning or Rich release that renames them costs speed, never a run.
"""

from __future__ import annotations

import functools
from typing import Any


def progress_bar(**kwargs: Any) -> Any:
    """Lightning's `RichProgressBar(**kwargs)`, quicker where this Lightning allows it.

    The stock bar rebuilds its metrics column after every training batch (reading every logged
    value back) and, when the fit ends, waits out a sleep of up to one redraw interval in its
    redraw thread. practicum logs its metrics once per epoch, so the quick bar refreshes the column
    at epoch ends only and stops its redraw thread at once: about 5% of a small model's fit. The
    bar on screen is the same."""
    from lightning.pytorch.callbacks import RichProgressBar

    return (quick_progress_bar_class() or RichProgressBar)(**kwargs)


@functools.cache
def quick_progress_bar_class() -> type | None:
    """The quick bar's class, or None when this Lightning lacks a name it needs."""
    from lightning.pytorch.callbacks import RichProgressBar
    from lightning.pytorch.callbacks.progress import rich_progress

    base_thread = getattr(rich_progress, "_RefreshThread", None)
    methods = ("_init_progress", "_update", "_initialize_train_progress_bar_id")
    if base_thread is None or not all(hasattr(RichProgressBar, name) for name in methods):
        return None

    class RedrawThread(base_thread):
        """Redraws when asked, at most `refresh_per_second` times a second; stops without delay."""

        def run(self) -> None:
            while not self.done.wait(1 / self.refresh_per_second):
                if self.refresh_cond:
                    with self.live._lock:
                        if not self.done.is_set():
                            self.live.refresh()
                    self.refresh_cond = False

    class QuickProgressBar(RichProgressBar):
        """`RichProgressBar` whose metrics column is updated at epoch ends, not after every batch."""

        redraw_thread = RedrawThread

        def _init_progress(self, trainer: Any) -> None:
            started = self.progress
            super()._init_progress(trainer)
            live = getattr(self.progress, "live", None)
            thread = getattr(live, "_refresh_thread", None)
            if self.progress is started or not isinstance(thread, base_thread):
                return
            if not isinstance(thread, RedrawThread) and hasattr(live, "_lock"):
                # Lightning's thread sleeps a whole interval between checks; it exits at its next wake
                thread.stop()
                live._refresh_thread = RedrawThread(live, thread.refresh_per_second)
                live._refresh_thread.start()

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            # the stock hook, less its metrics refresh (on_train_epoch_end and on_validation_end
            # still do that)
            if not self.is_disabled and self.train_progress_bar_id is None:
                # resuming from a checkpoint saved mid-epoch
                self._initialize_train_progress_bar_id()
            self._update(self.train_progress_bar_id, batch_idx + 1)

    return QuickProgressBar
