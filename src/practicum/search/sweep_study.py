"""A sweep's budget and schedule: the epochs all its trials trained, its wall time, how idle its
slots were, and, for a search, what its study says (the pruner, TPE's random start-up trials).

A slot is idle while fewer than `n_jobs` trials run, between the first start and the last end.
Where trials run in slots or SLURM workers, the times are the study's: a trial starts when it is
asked for, just before its process starts, and ends when it is told, as soon as its process ends.
Trials run in batches (or without a study: Hydra's basic sweeper) are told when the batch ends, so
they are timed by their own files instead: Hydra's overrides.yaml written as the job starts,
summary.json as it ends.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from practicum.methodology.run_summary import RunSummary
from practicum.run.study_trial import open_storage
from practicum.search.sweep import Trial

log = logging.getLogger(__name__)
RANDOM_STARTUP = "random_startup"  # the user attr the sweeper sets on TPE's random trials


@dataclass
class Schedule:
    trial_epochs: int  # epochs trained by all trials
    wall_s: float | None = None  # first start to last end
    slots: int | None = None  # trials at once
    idle: float | None = None  # share of slot time with no trial running
    pruner: str | None = None
    startup: int | None = None  # TPE: trials drawn at random
    n_startup: int | None = None  # TPE: n_startup_trials

    def lines(self) -> list[str]:
        """What summary.md says of them."""
        text = f"Budget: {self.trial_epochs} trial-epochs"
        if self.wall_s is not None:
            text += f" in {self.wall_s:.1f} s of wall time"
        if self.idle is not None and self.slots and self.slots > 1:
            text += f"; {self.slots} slots, idle {100 * self.idle:.1f}% of it"
        lines = [text + "."]
        if self.pruner and self.pruner != "none":
            lines.append(f"Pruner: {self.pruner} (trials stopped early are `pruned`).")
        if self.startup is not None:
            lines.append(
                f"TPE: {self.startup} trials drawn at random while fewer than "
                f"{self.n_startup} had finished (n_startup_trials), the rest by TPE."
            )
        return lines


def schedule(sweep_dir: Path, trials: list[Trial]) -> Schedule:
    sweeper = saved_sweeper(sweep_dir)
    epochs = sum(int(t.get("epochs_trained", 0) or 0) for t in trials)
    found = Schedule(trial_epochs=epochs, pruner=sweeper.get("pruner"))
    in_slots = sweeper.get("schedule") in ("slots", "workers")
    study_trials = read_study(sweeper, {t.job for t in trials}) if in_slots else []
    if study_trials:
        spans = [
            (t.datetime_start.timestamp(), t.datetime_complete.timestamp())
            for t in study_trials
            if t.datetime_start and t.datetime_complete
        ]
        startup = [
            t.user_attrs[RANDOM_STARTUP] for t in study_trials if RANDOM_STARTUP in t.user_attrs
        ]
        if startup:
            found.startup = sum(bool(s) for s in startup)
            found.n_startup = (sweeper.get("sampler") or {}).get("n_startup_trials")
    else:
        spans = [span for t in trials if (span := file_span(t.run_dir)) is not None]
    slots = sweeper.get("n_jobs")
    found.slots = int(slots) if isinstance(slots, int) else None
    if spans:
        found.wall_s = max(end for _, end in spans) - min(start for start, _ in spans)
        if found.slots:
            found.idle = idle_fraction(spans, found.slots)
    return found


def idle_fraction(spans: list[tuple[float, float]], slots: int) -> float:
    """The share of `slots` x (last end - first start) during which a slot had no trial."""
    begin, finish = min(s for s, _ in spans), max(e for _, e in spans)
    if finish <= begin:
        return 0.0
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    idle, alive, last = 0.0, 0, begin
    for moment, change in events:
        idle += (moment - last) * max(0, slots - alive)
        alive, last = alive + change, moment
    return idle / (slots * (finish - begin))


def saved_sweeper(sweep_dir: Path) -> dict[str, Any]:
    """`hydra.sweeper` as the sweep saved it in multirun.yaml (values the sweeper resolved)."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return {}
    node = ((yaml.safe_load(path.read_text()) or {}).get("hydra") or {}).get("sweeper") or {}
    return {k: v for k, v in node.items() if not (isinstance(v, str) and "${" in v)}


def read_study(sweeper: dict[str, Any], jobs: set[int]) -> list[Any]:
    """The study's trials that are this sweep's jobs; none when it has no readable study."""
    storage, name = sweeper.get("storage"), sweeper.get("study_name")
    if not storage or not name:
        return []
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=str(name), storage=open_storage(str(storage)))
        return [t for t in study.get_trials(deepcopy=False) if t.number in jobs]
    except Exception as exc:  # a summary never fails on its study: the run folders still tell
        log.warning("study %s in %s not read: %s", name, storage, exc)
        return []


def file_span(run_dir: Path) -> tuple[float, float] | None:
    """A trial's start and end from the files Hydra writes as it starts and it writes as it ends."""
    with contextlib.suppress(OSError):
        start = (run_dir / ".hydra" / "overrides.yaml").stat().st_mtime
        return start, RunSummary.path(run_dir).stat().st_mtime
    return None
