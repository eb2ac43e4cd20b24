"""Optuna study storage: make an sqlite file's folder exist before the sweeper opens it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SQLITE = "sqlite:///"


def sqlite_path(storage: Any) -> Path | None:
    """The file behind `sqlite:///relative.db` or `sqlite:////absolute.db`; None for other storages."""
    if not isinstance(storage, str) or not storage.startswith(SQLITE):
        return None
    return Path(storage[len(SQLITE) :])


class PrepareStudyStorage(Callback):
    """`search.storage=sqlite:///logs/studies/x.db` works without creating logs/studies/ by hand."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        path = sqlite_path(config.hydra.sweeper.get("storage"))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
