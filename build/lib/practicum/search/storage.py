"""Optuna study storage: make the folder of an sqlite or journal file exist before the sweeper
opens it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SQLITE = "sqlite:///"
JOURNAL = "journal:"


def storage_file(storage: Any) -> Path | None:
    """The file behind `sqlite:///relative.db`, `sqlite:////absolute.db` or `journal:<file>`;
    None for other storages (a database server)."""
    if not isinstance(storage, str):
        return None
    if storage.startswith(SQLITE):
        return Path(storage[len(SQLITE) :])
    if storage.startswith(JOURNAL):
        path = storage[len(JOURNAL) :]
        return Path(path[2:] if path.startswith("///") else path)
    return None


class PrepareStudyStorage(Callback):
    """`search.storage=sqlite:///logs/studies/x.db` (or `journal:logs/studies/x.log`) works without
    creating logs/studies/ by hand."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        path = storage_file(config.hydra.sweeper.get("storage"))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
