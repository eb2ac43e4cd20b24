"""The Optuna study a search's trial belongs to: where it is stored, the pruner that judges its
epochs, and the trial itself, opened again inside the trial's process.

A search keeps its study on disk: `search.storage`, or a journal file in the sweep directory. The
sweeper asks it for trials; each trial's process opens the same study to report the goal metric
on val after every epoch and to ask the pruner whether to go on; the dashboard and a rebuilt
summary read the same file. A journal file needs no database and appends under a lock that holds
on a shared (NFS) filesystem, where an sqlite file does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SQLITE = "sqlite:///"
JOURNAL = "journal:"
STUDY_FILE = "study.journal"
PRUNERS = ("none", "median", "asha", "hyperband")


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


def storage_url(storage: str | None, sweep_dir: Path | str) -> str:
    """`search.storage`, or by default a journal file in the sweep directory."""
    if storage and str(storage) not in ("None", "null"):
        return str(storage)
    return f"{JOURNAL}{Path(sweep_dir).absolute() / STUDY_FILE}"


def open_storage(url: str) -> Any:
    """Optuna's storage behind a URL: a journal file storage for `journal:<file>`, else the URL
    (sqlite, PostgreSQL, MySQL) through Optuna's own reader."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if url.startswith(JOURNAL):
        path = storage_file(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        return optuna.storages.get_storage(url)
    except Exception as exc:  # SQLAlchemy's many errors: no such dialect, driver or server
        from practicum.errors import UserError

        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"search.storage={url} cannot be opened ({reason}): use journal:<file>, "
            "sqlite:///<file>, or a database URL whose server answers"
        ) from exc


def make_pruner(
    name: str, min_resource: int = 1, reduction_factor: int = 3, max_resource: int | None = None
) -> Any:
    """Optuna's pruner for `search.pruner`. A trial's resource is its epochs trained: no trial is
    pruned before `min_resource` epochs; ASHA and Hyperband keep 1 in `reduction_factor` trials
    at each rung (min_resource x reduction_factor^k epochs)."""
    from optuna import pruners

    if name == "none":
        return pruners.NopPruner()
    if name == "median":
        return pruners.MedianPruner(n_warmup_steps=min_resource)
    if name == "asha":
        return pruners.SuccessiveHalvingPruner(
            min_resource=min_resource, reduction_factor=reduction_factor
        )
    if name == "hyperband":
        return pruners.HyperbandPruner(
            min_resource=min_resource,
            max_resource=max_resource or "auto",
            reduction_factor=reduction_factor,
        )
    raise ValueError(f"search.pruner={name}: choose one of {', '.join(PRUNERS)}")


def open_trial(sweeper: Any, sweep_dir: Path | str, number: int, max_epochs: int) -> Any:
    """Trial `number` of the sweep's study, as an Optuna `Trial` that reports and asks the
    pruner; `sweeper` is the sweep's `hydra.sweeper` node."""
    import optuna

    storage = open_storage(storage_url(sweeper.get("storage"), sweep_dir))
    pruner = make_pruner(
        str(sweeper.pruner),
        int(sweeper.min_resource),
        int(sweeper.reduction_factor),
        max_epochs,
    )
    name = str(sweeper.study_name)
    # the sampler plays no part here: the trial's values were drawn when the sweeper asked
    study = optuna.load_study(
        study_name=name, storage=storage, pruner=pruner, sampler=optuna.samplers.RandomSampler()
    )
    study_id = storage.get_study_id_from_name(name)
    return optuna.trial.Trial(
        study, storage.get_trial_id_from_study_id_trial_number(study_id, number)
    )
