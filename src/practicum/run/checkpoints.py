"""Resume a run where it stopped: `ckpt_path=last`, random states in checkpoints, the CSV history.

A resumed run must end where the uninterrupted run would have. Lightning restores the weights, the
optimizer, the scheduler, the loops and the callbacks; practicum adds what decides the rest of the
run: the random states (dropout, augmentation, shuffling) and the metrics history in metrics.csv,
which continues from the checkpoint's step instead of starting over. `last.ckpt` itself is a
second, stock `ModelCheckpoint` in conf/callbacks/default.yaml (no monitor, one file named `last`):
it is rewritten at the end of every epoch, and between two steps of an epoch by `StepCheckpoint`
(run/step_checkpoints.py) at a signal or a time interval; resuming it continues exactly as the
uninterrupted run did. `progress_text` says where a checkpoint stands.

Checkpoints are written by `BackgroundCheckpointIO`. What holds:

- a save serializes the checkpoint into memory on the training thread and returns: the bytes are
  the state at the call, whatever the optimizer changes next;
- one writer thread writes them as every file of the run is written (files.py: a temporary file
  beside the target, fsync, rename, fsync of the folder), so a run killed or out of disk while
  saving leaves the previous `last.ckpt` whole;
- saves and removals of old files (ModelCheckpoint's previous best) are done in the order they
  were asked for; at most two wait at a time, after which a save waits for room;
- a failed write is raised on the training thread at the next save or removal, or at the end of
  the fit (`teardown`), as the same exception (a full disk: an OSError naming the file), and
  nothing queued behind it is done, as after a synchronous save that raised;
- loading a checkpoint, `wait()` and the end of the fit wait for every queued write: once
  `trainer.fit` returns, or has raised, the files are on disk.

`AtomicCheckpointIO` is the same write on the training thread; it is used where a logger uploads
each checkpoint file as soon as it is saved (`log_model`).
"""

from __future__ import annotations

import atexit
import csv
import io
import os
import queue
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning.pytorch.loggers import Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from practicum.errors import UserError
from practicum.platform.files import open_atomic, write_text
from practicum.tasks.base import MID_EPOCH_KEY


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """`ckpt_path=last` is this run directory's checkpoints/last.ckpt; any other value is a file."""
    path = cfg.get("ckpt_path")
    if path is None:
        return None
    if path == "last":
        path = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise UserError(
                f"ckpt_path=last but {path} does not exist: pass hydra.run.dir=<the run directory "
                "to resume> or ckpt_path=<a .ckpt file>"
            )
    try:
        checkpoint_progress(str(path))
    except Exception as exc:  # truncated, not a torch file, or unsafe to load with weights_only
        raise UserError(
            f"ckpt_path={path} is not a readable checkpoint ({type(exc).__name__}): pass a .ckpt "
            "file written by train.py"
        ) from exc
    return str(path)


def _read(path: str) -> dict[str, Any]:
    """A checkpoint's top-level entries, mapped rather than read ({} for a file of no dict)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return checkpoint if isinstance(checkpoint, dict) else {}


def checkpoint_progress(path: str) -> tuple[int | None, int | None]:
    """(epoch, global step) a checkpoint was written at; None for a file without them."""
    checkpoint = _read(path)
    epoch, step = checkpoint.get("epoch"), checkpoint.get("global_step")
    return (None if epoch is None else int(epoch)), (None if step is None else int(step))


def mid_epoch(path: str) -> dict[str, int] | None:
    """Where a checkpoint saved in the middle of an epoch stands (None: at an epoch's end)."""
    return _read(path).get(MID_EPOCH_KEY)


def epochs_done(epoch: int | None, mid: dict[str, int] | None) -> int:
    """Finished epochs: a checkpoint names the epoch it was saved in, finished or not."""
    if epoch is None:
        return 0
    return epoch if mid else epoch + 1


def progress_text(path: str) -> str:
    """`after 3 epochs`, or `after 3 epochs and 7 of epoch 4's 20 batches`."""
    epoch, _ = checkpoint_progress(path)
    mid = mid_epoch(path)
    done = epochs_done(epoch, mid)
    text = f"after {done} epoch{'s' if done != 1 else ''}"
    if mid:
        text += f" and {mid['batches_done']} of epoch {done + 1}'s {mid['batches']} batches"
    return text


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint files, written like every file of the run (files.py): a temporary
    file beside the target, flushed to disk, then moved into place. Lightning's own save stages the
    file in the system's temporary folder, so on another filesystem (a cluster's scratch space) the
    move becomes a copy that a kill or a full disk cuts off, leaving `last.ckpt` empty."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)  # remote storage
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open_atomic(path, "wb") as handle:
            torch.save(checkpoint, handle)


class BackgroundCheckpointIO(AtomicCheckpointIO):
    """`AtomicCheckpointIO` with the file written on a thread of its own (see the module's
    docstring for what holds). The training thread pays for the serialization only; the writes,
    their fsyncs and the removals of old files run in order on one writer thread, started at the
    first save and stopped by `teardown` at the end of each fit."""

    # saves and removals queued at most; one more waits for room
    PENDING = 2

    def __init__(self) -> None:
        super().__init__()
        self.jobs: queue.Queue[Callable[[], None] | None] | None = None
        self.room: threading.Semaphore | None = None
        self.writer: threading.Thread | None = None
        self.failure: BaseException | None = None

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        self._raise_failure()
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)  # remote storage
        snapshot = io.BytesIO()
        torch.save(checkpoint, snapshot)
        self._submit(lambda: _write_checkpoint(path, snapshot))

    def remove_checkpoint(self, path: Any) -> None:
        if "://" in str(path):
            return super().remove_checkpoint(path)
        self._raise_failure()
        self._submit(lambda: TorchCheckpointIO.remove_checkpoint(self, path))

    def load_checkpoint(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.wait()
        return super().load_checkpoint(*args, **kwargs)

    def wait(self) -> None:
        """Return once every queued save and removal is done; a failed one is raised here."""
        if self.jobs is not None:
            self.jobs.join()
        self._raise_failure()

    def teardown(self) -> None:
        """The end of a fit (after an exception too): wait for the last write, stop the writer
        and raise a failure not raised yet. The next save starts a new writer."""
        try:
            self.wait()
        finally:
            if self.jobs is not None and self.writer is not None:
                self.jobs.put(None)
                self.writer.join()
            self.jobs = self.room = self.writer = None
            _running.discard(self)
            self.failure = None
            super().teardown()

    def _submit(self, job: Callable[[], None]) -> None:
        if self.jobs is None or self.room is None:
            self.jobs, self.room = queue.Queue(), threading.Semaphore(self.PENDING)
            # a daemon: a process that ends without `teardown` is not kept alive by it (a write
            # cut off leaves a temporary file beside the untouched target)
            self.writer = threading.Thread(
                target=self._work,
                args=(self.jobs, self.room),
                name="checkpoint-writer",
                daemon=True,
            )
            self.writer.start()
            _running.add(self)
        self.room.acquire()
        self.jobs.put(job)

    def _work(self, jobs: queue.Queue, room: threading.Semaphore) -> None:
        while (job := jobs.get()) is not None:
            try:
                if self.failure is None:  # after a failure, the jobs behind it are dropped
                    job()
            except BaseException as exc:
                self.failure = exc
            finally:
                job = None  # the snapshot's memory goes now, not at the next save
                room.release()
                jobs.task_done()
        jobs.task_done()

    def _raise_failure(self) -> None:
        """Raise a failed write once, after the jobs queued behind it have been dropped; the
        writer then takes new work again."""
        if self.failure is None:
            return
        if self.jobs is not None:
            self.jobs.join()
        failure, self.failure = self.failure, None
        raise failure


# the writers started and not torn down yet
_running: weakref.WeakSet[BackgroundCheckpointIO] = weakref.WeakSet()


@atexit.register
def _finish_writes() -> None:
    """A process that ends without `teardown` (a save after `fit`, or a fit whose error handling
    failed before Lightning's teardown) still writes what it saved: the daemon writer threads run
    until the interpreter's exit handlers are done. A failed write is one line: nothing is left to
    raise it to."""
    for io_ in list(_running):
        if io_.writer is None or not io_.writer.is_alive():  # a forked child: not its writer
            continue
        try:
            io_.wait()
        except Exception as exc:
            print(f"practicum: warning: checkpoint not written: {exc}", file=sys.stderr, flush=True)


def _write_checkpoint(path: Any, snapshot: io.BytesIO) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open_atomic(path, "wb") as handle, snapshot.getbuffer() as content:
        handle.write(content)


class RunCSVLogger(Logger):
    """The run directory's metrics.csv (and hparams.yaml), in the format of Lightning's CSVLogger.

    The rows are kept in memory and the whole file is written again (atomically, files.py) each
    time Lightning asks the logger to save, after every logging call: a kill or a full disk leaves
    the file as it was after the previous call. Resuming from a checkpoint of this directory
    (`keep_before_step=` its global step), the file keeps the rows logged before that step and
    continues after them, where Lightning's CSVLogger would delete it. Built on the public `Logger`
    base class only."""

    METRICS_FILE = "metrics.csv"
    HPARAMS_FILE = "hparams.yaml"

    def __init__(
        self, save_dir: str, name: str = "", version: str = "", keep_before_step: int | None = None
    ) -> None:
        super().__init__()
        # own attribute names, not underscored ones that a later Logger might come to use
        self.directory, self.run_name, self.run_version = str(save_dir), name, version
        self.keep_before_step = keep_before_step
        self.hparams: dict[str, Any] = {}
        self.keys: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.started = False
        self.unsaved = False

    @property
    def name(self) -> str:
        return self.run_name

    @property
    def version(self) -> str:
        return self.run_version

    @property
    def save_dir(self) -> str:
        return self.directory

    @property
    def log_dir(self) -> str:
        return os.path.join(self.directory, self.run_name, self.run_version).rstrip(os.sep)

    @property
    def metrics_path(self) -> Path:
        return Path(self.log_dir) / self.METRICS_FILE

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(params, dict):
            params = vars(params)
        self.hparams.update(params)
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(_plain_tree(self.hparams), sort_keys=False)
        write_text(Path(self.log_dir) / self.HPARAMS_FILE, text)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if not self.started:
            self._start()
        row = {key: _plain(value) for key, value in metrics.items()}
        row["step"] = step if step is not None else 0
        if set(row) - set(self.keys):
            self.keys = sorted({*self.keys, *row})  # a new column: the file gets the wider header
        self.rows.append(row)
        self.unsaved = True

    @rank_zero_only
    def save(self) -> None:
        if self.unsaved:
            with open_atomic(self.metrics_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.keys)
                writer.writeheader()
                writer.writerows(self.rows)
            self.unsaved = False

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()

    def _start(self) -> None:
        """A new run starts an empty file; a resumed one keeps the rows before its step."""
        self.started = True
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        if self.keep_before_step is None or not self.metrics_path.is_file():
            self.metrics_path.unlink(missing_ok=True)
            return
        with self.metrics_path.open(newline="") as file:
            reader = csv.DictReader(file)
            self.keys = list(reader.fieldnames or [])
            self.rows = [row for row in reader if self._kept(row)]
        self.unsaved = True

    def _kept(self, row: dict[str, str | None]) -> bool:
        # a row of a file cut off midway misses its last fields: it is dropped with the later ones
        if any(value is None for value in row.values()):
            return False
        step = row.get("step")
        return bool(step) and float(step) < self.keep_before_step


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, torch.Tensor) else value


def _plain_tree(value: Any) -> Any:
    """Hyperparameters as YAML can write them: containers as lists and dicts, others as text."""
    if isinstance(value, dict):
        return {str(key): _plain_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_tree(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(_plain(value))
