"""Checkpoints written on a background thread: in order, as a snapshot of the state at the save,
off the training thread, with a failed write raised on the training thread and the previous file
left whole."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from practicum.run.checkpoints import BackgroundCheckpointIO

from conftest import wait_for

real_fsync = os.fsync


def slow_fsync(seconds: float):
    def fsync(fd: int) -> None:
        time.sleep(seconds)
        real_fsync(fd)

    return fsync


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_saves_are_written_in_the_order_they_were_made(tmp_path, monkeypatch):
    renamed: list[str] = []
    real_replace = os.replace

    def replace(source, target):
        renamed.append(Path(target).name)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    io = BackgroundCheckpointIO()
    last = tmp_path / "last.ckpt"
    order = []
    for epoch in range(30):
        weights = torch.full((2000,), float(epoch))
        io.save_checkpoint({"epoch": epoch, "weights": weights}, last)
        order.append("last.ckpt")
        if epoch % 3 == 0:  # files of different sizes between them
            io.save_checkpoint(
                {"epoch": epoch, "big": torch.randn(50_000)}, tmp_path / f"{epoch}.ckpt"
            )
            order.append(f"{epoch}.ckpt")
    io.wait()
    assert renamed == order
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["epoch"] == 29 and torch.equal(
        checkpoint["weights"], torch.full((2000,), 29.0)
    )
    io.teardown()
    assert io.writer is None
    assert leftovers(tmp_path) == []


def test_a_save_holds_the_state_at_the_call_not_what_training_does_next(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", slow_fsync(0.1))
    io = BackgroundCheckpointIO()
    io.save_checkpoint({"weights": torch.zeros(10)}, tmp_path / "first.ckpt")  # the writer is busy
    weights = torch.zeros(1000)
    io.save_checkpoint({"weights": weights, "step": 1}, tmp_path / "last.ckpt")
    weights.add_(1.0)  # the optimizer's next step, in place, before the file is written
    io.teardown()
    assert torch.equal(
        torch.load(tmp_path / "last.ckpt", weights_only=True)["weights"], torch.zeros(1000)
    )


def test_the_training_thread_does_not_wait_for_the_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", slow_fsync(0.2))  # a slow disk: two fsyncs a file
    io = BackgroundCheckpointIO()
    started = time.perf_counter()
    io.save_checkpoint({"weights": torch.randn(10_000)}, tmp_path / "last.ckpt")
    saved = time.perf_counter() - started
    io.wait()
    written = time.perf_counter() - started
    assert saved < 0.1, f"save_checkpoint took {saved:.3f} s"
    assert written >= 0.3, f"the write took {written:.3f} s"
    assert (tmp_path / "last.ckpt").is_file()
    io.teardown()


def test_no_more_than_two_saves_wait(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", slow_fsync(0.05))
    io = BackgroundCheckpointIO()
    started = time.perf_counter()
    for epoch in range(4):
        io.save_checkpoint({"epoch": epoch}, tmp_path / "last.ckpt")
    # the 3rd and 4th saves each waited for a write (two fsyncs of 0.05 s) to end
    assert time.perf_counter() - started >= 0.2
    io.teardown()


def test_loading_waits_for_the_pending_write(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", slow_fsync(0.1))
    io = BackgroundCheckpointIO()
    io.save_checkpoint({"epoch": 7}, tmp_path / "last.ckpt")
    assert io.load_checkpoint(tmp_path / "last.ckpt", weights_only=True)["epoch"] == 7
    io.teardown()


def test_a_removal_after_a_pending_save_of_that_file_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", slow_fsync(0.1))
    io = BackgroundCheckpointIO()
    best = tmp_path / "epoch_003.ckpt"
    io.save_checkpoint({"epoch": 3}, best)
    io.remove_checkpoint(best)  # queued while the save is being written
    io.teardown()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_is_raised_at_the_next_save_and_the_previous_file_stays(
    tmp_path, monkeypatch
):
    io = BackgroundCheckpointIO()
    last = tmp_path / "last.ckpt"
    old_best = tmp_path / "epoch_001.ckpt"
    io.save_checkpoint({"epoch": 1}, old_best)
    io.save_checkpoint({"epoch": 1}, last)
    io.wait()
    before = last.read_bytes()

    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    queued = threading.Event()

    def fsync(fd: int) -> None:
        queued.wait(timeout=30)  # the removal is queued before the write fails
        raise full

    monkeypatch.setattr(os, "fsync", fsync)
    io.save_checkpoint({"epoch": 2, "weights": torch.randn(1000)}, tmp_path / "epoch_002.ckpt")
    io.remove_checkpoint(old_best)  # the new best's save failed: the old one must stay
    queued.set()  # two are pending: the next save waits for room, then is queued behind them
    io.save_checkpoint({"epoch": 2}, last)
    caught: list[OSError] = []

    def next_save_raises() -> bool:  # the writer stores the error, then the next save raises it
        try:
            io.save_checkpoint({"epoch": 3}, last)
        except OSError as exc:
            caught.append(exc)
        return bool(caught)

    wait_for(next_save_raises, timeout=30, what="the failed write raised at a save")
    (raised,) = caught
    assert raised is full
    assert raised.errno == errno.ENOSPC
    assert raised.filename == str(tmp_path / "epoch_002.ckpt")
    monkeypatch.undo()
    io.wait()  # raised once: nothing more to raise
    assert last.read_bytes() == before
    assert old_best.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_001.ckpt", "last.ckpt"]

    # the writer works again: the next save is written
    io.save_checkpoint({"epoch": 4}, last)
    io.teardown()
    assert torch.load(last, weights_only=True)["epoch"] == 4


@pytest.mark.parametrize("stage", ["fsync", "replace"])
def test_a_failed_last_write_is_raised_at_teardown_and_the_writer_starts_over(
    tmp_path, monkeypatch, stage
):
    io = BackgroundCheckpointIO()
    last = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, last)
    io.wait()
    before = last.read_bytes()

    failure = OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(os, stage, lambda *args: (_ for _ in ()).throw(failure))
    io.save_checkpoint({"epoch": 2}, last)
    with pytest.raises(OSError) as raised:
        io.teardown()
    assert raised.value is failure and raised.value.filename == str(last)
    assert io.writer is None and io.failure is None
    monkeypatch.undo()
    assert last.read_bytes() == before
    assert leftovers(tmp_path) == []

    io.teardown()  # nothing left to raise
    io.save_checkpoint({"epoch": 3}, last)  # a later fit
    io.teardown()
    assert torch.load(last, weights_only=True)["epoch"] == 3


@pytest.mark.filterwarnings("ignore:.*isinstance.treespec, LeafSpec.* is deprecated")
def test_a_fit_whose_last_write_fails_raises_it(tmp_path, monkeypatch):
    """Lightning calls `teardown` at the end of the fit: the failure of the last save is not lost,
    and the error is the OSError naming the file, which the full-disk line reads."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    written = []

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            written.append(fd)
            if len(written) >= 2:  # the second epoch's save: the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    checkpoints = tmp_path / "checkpoints"
    io = BackgroundCheckpointIO()
    monkeypatch.setattr(os, "fsync", fsync)
    data = DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[
            ModelCheckpoint(dirpath=checkpoints, filename="last", enable_version_counter=False)
        ],
        plugins=[io],
        accelerator="cpu",
    )
    with pytest.raises(OSError) as raised:
        trainer.fit(Tiny(), train_dataloaders=data)
    assert raised.value.errno == errno.ENOSPC
    assert raised.value.filename == str(checkpoints / "last.ckpt")
    monkeypatch.undo()
    assert (
        torch.load(checkpoints / "last.ckpt", weights_only=False)["epoch"] == 0
    )  # the first epoch's
    assert leftovers(checkpoints) == []
    assert io.writer is None


def test_remote_paths_are_saved_by_lightning_on_the_training_thread(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(
        "lightning.pytorch.plugins.io.TorchCheckpointIO.save_checkpoint",
        lambda self, checkpoint, path, storage_options=None: saved.append(path),
    )
    io = BackgroundCheckpointIO()
    io.save_checkpoint({"epoch": 1}, "memory://bucket/last.ckpt")
    assert saved == ["memory://bucket/last.ckpt"] and io.writer is None


def test_the_trainer_gets_the_background_writer_unless_a_logger_uploads_checkpoints():
    from omegaconf import OmegaConf

    from practicum.run.build import checkpoint_io
    from practicum.run.checkpoints import AtomicCheckpointIO

    plain = OmegaConf.create({"logger": {"csv": {"save_dir": "."}, "wandb": None}})
    uploads = OmegaConf.create({"logger": {"wandb": {"log_model": "all"}}})
    assert type(checkpoint_io(plain)) is BackgroundCheckpointIO
    assert type(checkpoint_io(uploads)) is AtomicCheckpointIO


SAVER = """
import sys, torch
from practicum.run.checkpoints import BackgroundCheckpointIO
io = BackgroundCheckpointIO()
state = {"weights": torch.randn(1_500_000), "epoch": 0}
io.save_checkpoint(state, sys.argv[1])
io.wait()
print(0, flush=True)
for epoch in range(1, 10**6):
    state["epoch"] = epoch
    state["weights"].add_(1.0)
    io.save_checkpoint(state, sys.argv[1])
    print(epoch, flush=True)
"""


@pytest.mark.slow
def test_a_kill_while_the_writer_writes_leaves_a_whole_checkpoint(tmp_path):
    last = tmp_path / "checkpoints" / "last.ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for saves in (1, 2, 4):
        process = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(last)], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(saves):
            assert process.stdout.readline(), "the saver died before its saves"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        checkpoint = torch.load(last, weights_only=True)  # whole, loadable
        assert checkpoint["epoch"] >= 0
    assert all(p.name.endswith(".tmp") for p in last.parent.iterdir() if p != last)


@pytest.mark.slow
def test_a_process_that_never_tears_down_writes_its_last_save_and_exits(tmp_path):
    script = (
        "import sys, torch\n"
        "from practicum.run.checkpoints import BackgroundCheckpointIO\n"
        "io = BackgroundCheckpointIO()\n"
        "io.save_checkpoint({'epoch': 0}, sys.argv[1])\n"
        "io.wait()\n"
        "io.save_checkpoint({'epoch': 1, 'weights': torch.randn(1_000_000)}, sys.argv[1])\n"
    )
    last = tmp_path / "last.ckpt"
    result = subprocess.run([sys.executable, "-c", script, str(last)], timeout=60)
    assert result.returncode == 0
    assert torch.load(last, weights_only=True)["epoch"] == 1
