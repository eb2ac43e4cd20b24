"""Resume a run where it stopped: `ckpt_path=last`, random states in checkpoints, the CSV history.

A resumed run must end where the uninterrupted run would have. Lightning restores the weights, the
optimizer, the scheduler, the loops and the callbacks; practicum adds what decides the rest of the
run: the random states (dropout, augmentation, shuffling) and the metrics history in metrics.csv,
which continues from the checkpoint's epoch instead of starting over. Lightning writes checkpoint
files through an fsspec transaction (a temporary file moved into place), so a run killed while
saving leaves the previous `last.ckpt` whole. `last.ckpt` itself is a second, stock
`ModelCheckpoint` in conf/callbacks/default.yaml (no monitor, one file named `last`): it is
rewritten after every epoch, where `save_last=True` follows only the top-k saves.
"""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import Logger
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


class RunCSVLogger(Logger):
    """The run directory's metrics.csv (and hparams.yaml), in the format of Lightning's CSVLogger.

    Rows are written as they come, so a run killed later still has every row up to the epoch it
    resumes from. Resuming from a checkpoint of this directory (`keep_before_step=` its global
    step), the file keeps the rows logged before that step and continues after them, where
    Lightning's CSVLogger would delete it. Built on the public `Logger` base class only."""

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
        self.started = False

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
        save_hparams_to_yaml(Path(self.log_dir) / self.HPARAMS_FILE, self.hparams)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if not self.started:
            self._start()
        row = {key: _plain(value) for key, value in metrics.items()}
        row["step"] = step if step is not None else 0
        if set(row) - set(self.keys):
            # a new column: the whole file again under the wider header, as CSVLogger does
            self.keys = sorted({*self.keys, *row})
            rows = _read_rows(self.metrics_path) if self.metrics_path.is_file() else []
            _write_rows(self.metrics_path, self.keys, [*rows, row])
        else:
            with self.metrics_path.open("a", newline="") as file:
                csv.DictWriter(file, fieldnames=self.keys).writerow(row)

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
            kept = [row for row in reader if self._kept(row)]
        _write_rows(self.metrics_path, self.keys, kept)

    def _kept(self, row: dict[str, str | None]) -> bool:
        # a row cut off by a kill misses its last fields: it is dropped with the later ones
        if any(value is None for value in row.values()):
            return False
        step = row.get("step")
        return bool(step) and float(step) < self.keep_before_step


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, torch.Tensor) else value


def _read_rows(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def _write_rows(path: Path, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """The whole file, written beside it and moved into place: a kill leaves the old one whole."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)
