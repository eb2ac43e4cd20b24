"""Resume a run where it stopped: `ckpt_path=last`, random states in checkpoints, the CSV history.

A resumed run must end where the uninterrupted run would have. Lightning restores the weights, the
optimizer, the scheduler, the loops and the callbacks; practicum adds what decides the rest of the
run: the random states (dropout, augmentation, shuffling) and the metrics history in metrics.csv,
which continues from the checkpoint's epoch instead of starting over. Lightning writes checkpoint
files through an fsspec transaction (a temporary file moved into place), so a run killed while
saving leaves the previous `last.ckpt` whole, and `RunCheckpoint` writes it after every epoch.
"""

from __future__ import annotations

import csv
import functools
import os
import random
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from practicum.errors import UserError

RNG_KEY = "practicum_rng"


def rng_state() -> dict[str, Any]:
    """Every random state a run draws from, in types `torch.load(weights_only=True)` accepts."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    saved = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            saved["keys"].numpy().astype(np.uint32),
            saved["pos"],
            saved["has_gauss"],
            saved["cached_gaussian"],
        )
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


def checkpoint_progress(path: str) -> tuple[int | None, int | None]:
    """(epoch, global step) a checkpoint was written at; None for a file without them."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(checkpoint, dict):
        return None, None
    epoch, step = checkpoint.get("epoch"), checkpoint.get("global_step")
    return (None if epoch is None else int(epoch)), (None if step is None else int(step))


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint whose `last.ckpt` is always the last finished epoch.

    Since Lightning 2.6, `save_last=True` writes last.ckpt only when a top-k checkpoint was saved
    in the same step: with `save_top_k: 1` it is a copy of the best epoch, and a run resumed from
    it repeats every epoch since. This writes it after every epoch (every validation, when saving
    follows validation instead of the training epoch), as `ckpt_path=last` needs."""

    @functools.cached_property
    def state_key(self) -> str:
        # Lightning formats this name around every hook call, dozens of times a step; what it is
        # made of (monitor, mode, save intervals) is fixed when the callback is built. Keyed as
        # ModelCheckpoint, so checkpoints written with either class restore its state.
        return ModelCheckpoint.__qualname__ + super().state_key.removeprefix(
            type(self).__qualname__
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def _save_last_if_behind(self, trainer: pl.Trainer) -> None:
        # skipped also when this step's top-k save already wrote last.ckpt
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class RunCSVLogger(CSVLogger):
    """The run directory's metrics.csv, written as the rows come. Resuming from a checkpoint of
    this directory (`keep_before_step=` its global step), it keeps the rows logged before that step
    and appends after them, where Lightning's CSVLogger would delete the file."""

    def __init__(self, *args: Any, keep_before_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_before_step = keep_before_step

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        # metrics arrive once per epoch: write them at once, so that a run killed later (after
        # its checkpoint) still has every row up to the epoch it resumes from
        super().log_metrics(metrics, step)
        self.save()

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            if self.keep_before_step is None:
                self._experiment = ExperimentWriter(log_dir=self.log_dir)
            else:
                self._experiment = _ContinuedWriter(self.log_dir, self.keep_before_step)
        return self._experiment


class _ContinuedWriter(ExperimentWriter):
    def __init__(self, log_dir: str, keep_before_step: int) -> None:
        self.keep_before_step = keep_before_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        if not os.path.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="") as file:
            reader = csv.DictReader(file)
            header = list(reader.fieldnames or [])
            rows = [row for row in reader if self._kept(row)]
        with open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = header

    def _kept(self, row: dict[str, str]) -> bool:
        step = row.get("step")
        return bool(step) and float(step) < self.keep_before_step
