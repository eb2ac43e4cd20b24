"""practicum's progress bar: the same bar as Lightning's, without the per-batch metric reads."""

from __future__ import annotations

import io
import time
from pathlib import Path

from conftest import compose_train


def test_progress_bar_shows_epoch_metrics_and_reads_them_once_per_epoch(
    tmp_path: Path, monkeypatch
):
    import lightning.pytorch as pl

    from practicum.build import build_datamodule, build_task, build_trainer
    from practicum.callbacks import ProgressBar, _RedrawThread

    reads = []
    original = ProgressBar.get_metrics

    def counting_get_metrics(self, trainer, pl_module):
        reads.append(trainer.global_step)
        return original(self, trainer, pl_module)

    monkeypatch.setattr(ProgressBar, "get_metrics", counting_get_metrics)
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
    bar = next(cb for cb in trainer.callbacks if isinstance(cb, ProgressBar))
    bar._console_kwargs["file"] = screen

    started = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    assert time.perf_counter() - started < 60

    steps_per_epoch = trainer.num_training_batches
    assert steps_per_epoch > 5
    # once per validation pass and once per training epoch, not once per batch
    assert 0 < len(reads) <= 2 * trainer.current_epoch
    shown = screen.getvalue()
    assert "Epoch 2/2" in shown
    assert "val/acc" in shown
    assert bar.progress is None or isinstance(
        bar.progress.live._refresh_thread, _RedrawThread | None
    )


def test_progress_bar_stops_without_waiting_out_its_redraw_interval():
    from lightning.pytorch.callbacks.progress.rich_progress import CustomProgress
    from rich.console import Console

    from practicum.callbacks import _RedrawThread

    progress = CustomProgress(
        console=Console(file=io.StringIO(), force_terminal=True), refresh_per_second=0.2
    )
    progress.start()
    progress.live._refresh_thread.stop()
    thread = _RedrawThread(progress.live, 0.2)  # one redraw per 5 s
    progress.live._refresh_thread = thread
    thread.start()
    task = progress.add_task("work", total=3)
    progress.update(task, completed=3)
    progress.soft_refresh()
    started = time.perf_counter()
    progress.stop()
    assert time.perf_counter() - started < 1.0
    assert not thread.is_alive()
