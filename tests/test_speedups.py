"""practicum/speedups.py: the quick progress bar where Lightning has the names it needs, the stock
`RichProgressBar` where it does not, and the same bar on screen either way."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from conftest import compose_train


def fit_with_bar(tmp_path: Path, monkeypatch) -> tuple[object, list[int], str, int]:
    """Train 3 epochs with the default progress bar; count its metric reads; capture its screen."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import RichProgressBar

    from practicum.build import build_datamodule, build_task, build_trainer

    reads = []
    original = RichProgressBar.get_metrics

    def counting_get_metrics(self, trainer, pl_module):
        reads.append(trainer.global_step)
        return original(self, trainer, pl_module)

    monkeypatch.setattr(RichProgressBar, "get_metrics", counting_get_metrics)
    screen = io.StringIO()
    cfg = compose_train(
        tmp_path,
        [
            "trainer.max_epochs=3",
            "+callbacks.progress_bar.console_kwargs.file=null",
            "+callbacks.progress_bar.console_kwargs.force_terminal=true",
            "+callbacks.progress_bar.console_kwargs.width=120",
        ],
    )
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule, task = build_datamodule(cfg), build_task(cfg)
    trainer = build_trainer(cfg)
    bar = next(cb for cb in trainer.callbacks if isinstance(cb, RichProgressBar))
    # the console's file, set after building: a StringIO is not a config value
    bar._console_kwargs["file"] = screen
    started = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    assert time.perf_counter() - started < 60
    assert trainer.num_training_batches > 5
    return bar, reads, screen.getvalue(), trainer.current_epoch


def test_the_quick_bar_shows_epoch_metrics_and_reads_them_once_per_epoch(
    tmp_path: Path, monkeypatch
):
    from practicum.speedups import quick_progress_bar_class

    quick = quick_progress_bar_class()
    if quick is None:
        pytest.skip("this Lightning lacks a name the quick bar needs: the stock bar runs")
    bar, reads, shown, epochs = fit_with_bar(tmp_path, monkeypatch)
    assert type(bar) is quick
    # once per validation pass and once per training epoch, not once per batch
    assert 0 < len(reads) <= 2 * epochs
    assert "Epoch 2/2" in shown and "val/acc" in shown


def test_without_the_private_names_the_stock_bar_runs(tmp_path: Path, monkeypatch):
    """A Lightning without `rich_progress._RefreshThread` (as 2.6.0): the same run, stock bar."""
    from types import SimpleNamespace

    import lightning.pytorch.callbacks.progress as progress
    from lightning.pytorch.callbacks import RichProgressBar

    from practicum import speedups

    # what speedups finds: the module without the name (Lightning's own code keeps its globals)
    renamed = SimpleNamespace(
        **{k: v for k, v in vars(progress.rich_progress).items() if k != "_RefreshThread"}
    )
    monkeypatch.setattr(progress, "rich_progress", renamed)
    speedups.quick_progress_bar_class.cache_clear()
    try:
        bar, reads, shown, epochs = fit_with_bar(tmp_path, monkeypatch)
    finally:
        speedups.quick_progress_bar_class.cache_clear()
    assert type(bar) is RichProgressBar
    # the stock bar reads the metrics after every batch
    assert len(reads) > 2 * epochs
    assert "Epoch 2/2" in shown and "val/acc" in shown


def test_without_a_private_method_the_stock_bar_is_built(monkeypatch):
    from lightning.pytorch.callbacks import RichProgressBar

    from practicum import speedups

    monkeypatch.delattr(RichProgressBar, "_initialize_train_progress_bar_id")
    speedups.quick_progress_bar_class.cache_clear()
    try:
        assert type(speedups.progress_bar(refresh_rate=5, leave=True)) is RichProgressBar
    finally:
        speedups.quick_progress_bar_class.cache_clear()


def test_the_quick_bar_stops_without_waiting_out_its_redraw_interval():
    from lightning.pytorch.callbacks.progress.rich_progress import CustomProgress
    from rich.console import Console

    from practicum.speedups import quick_progress_bar_class

    quick = quick_progress_bar_class()
    if quick is None:
        pytest.skip("this Lightning lacks a name the quick bar needs: the stock bar runs")
    progress = CustomProgress(
        console=Console(file=io.StringIO(), force_terminal=True), refresh_per_second=0.2
    )
    progress.start()
    progress.live._refresh_thread.stop()
    thread = quick.redraw_thread(progress.live, 0.2)  # one redraw per 5 s
    progress.live._refresh_thread = thread
    thread.start()
    task = progress.add_task("work", total=3)
    progress.update(task, completed=3)
    progress.soft_refresh()
    started = time.perf_counter()
    progress.stop()
    assert time.perf_counter() - started < 1.0
    assert not thread.is_alive()
