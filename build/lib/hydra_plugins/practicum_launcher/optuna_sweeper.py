"""Hydra's Optuna sweeper with one more kind of study storage: `journal:<file>`.

Several sweeps, on one machine or on the nodes of a cluster, can add trials to one study at once:
`search.storage=journal:/shared/studies/mlp.log search.study_name=mlp`. Optuna's journal file
storage appends each change to the file under a lock that holds on a shared (NFS) filesystem,
where an sqlite file does not. A database URL (`postgresql://...`, `mysql+pymysql://...`) and
`sqlite:///<file>` (one machine) go to Optuna as they are.
"""

from __future__ import annotations

from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper as HydraOptunaSweeper

from practicum.search.storage import JOURNAL, storage_file


def study_storage(storage: Any) -> Any:
    """The storage Optuna gets: a journal file storage for `journal:<file>`, else the value as is."""
    if not isinstance(storage, str) or not storage.startswith(JOURNAL):
        return storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(storage_file(storage))))


class OptunaSweeper(HydraOptunaSweeper):
    def __init__(self, *, storage: Any | None = None, **kwargs: Any) -> None:
        super().__init__(storage=study_storage(storage), **kwargs)
