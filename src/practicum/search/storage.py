"""Optuna study storage: make the folder of an sqlite or journal file exist before the sweeper
opens it."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

# where a storage URL's file is: practicum/run/study_trial.py, which a trial's process reads too
from practicum.run.study_trial import JOURNAL, SQLITE, storage_file

__all__ = ["JOURNAL", "SQLITE", "PrepareStudyStorage", "storage_file"]


class PrepareStudyStorage(Callback):
    """`search.storage=sqlite:///logs/studies/x.db` (or `journal:logs/studies/x.log`) works without
    creating logs/studies/ by hand."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        path = storage_file(config.hydra.sweeper.get("storage"))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
