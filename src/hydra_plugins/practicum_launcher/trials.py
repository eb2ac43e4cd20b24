"""How a search's trials are asked of the study, run and told back.

`Plan` holds what every process that asks needs (picklable: a SLURM worker gets it whole): the
study's storage and name, the sampler's config, the space, the budget. Asking and telling
go through the study on disk, so the sweeper, SLURM workers and the trials' processes share it.

`run_in_slots` keeps `slots` trials running: the moment one ends or is pruned, the next is asked
and started in its place; nothing waits for the slowest of a batch. A trial's job number is its
number in the study, so its folder, its summary row and the study agree.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from hydra.core.utils import JobReturn

from hydra_plugins.practicum_launcher.search_space import SearchSpace
from practicum.run.study_trial import make_pruner, open_storage

log = logging.getLogger(__name__)
RANDOM_STARTUP = "random_startup"  # user attr: a TPE trial drawn at random (start-up)
SWEEP = "sweep"  # user attr: the sweep directory that asked for the trial


@dataclass
class Plan:
    storage: str  # the study's storage URL
    study_name: str
    direction: str  # maximize or minimize
    sampler: dict[str, Any]  # the sampler's config (_target_, seed, ...), resolved
    space: SearchSpace
    n_trials: int  # trials this sweep adds to the study
    sweep: str = ""  # the sweep directory: several sweeps may add trials to one study at once
    pruner: str = "none"
    min_resource: int = 1
    reduction_factor: int = 3
    max_epochs: int | None = None
    seed_offset: int = 0  # a SLURM worker's index: its own random draws
    _study: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_study": None}  # each process opens the study itself

    def study(self) -> Any:
        """The study, opened once per process (created by the sweeper if new)."""
        import optuna

        if self._study is None:
            self._study = optuna.create_study(
                storage=open_storage(self.storage),
                study_name=self.study_name,
                direction=self.direction,
                sampler=self.make_sampler(),
                pruner=make_pruner(
                    self.pruner, self.min_resource, self.reduction_factor, self.max_epochs
                ),
                load_if_exists=True,
            )
        return self._study

    def make_sampler(self) -> Any:
        from hydra.utils import instantiate

        node = dict(self.sampler)
        own_draws = node.get("_target_", "").endswith(("RandomSampler", "TPESampler"))
        if own_draws and node.get("seed") is not None:
            node["seed"] = int(node["seed"]) + self.seed_offset
        if node.get("_target_", "").endswith("GridSampler"):
            node.pop("_partial_", None)
            node["search_space"] = self.space.grid()
        return instantiate(node, _execution_whitelist_=("optuna.samplers.*",))

    def asked(self) -> int:
        """Trials this sweep has asked for (from any of its processes)."""
        trials = self.study().get_trials(deepcopy=False)
        return sum(t.user_attrs.get(SWEEP) == self.sweep for t in trials)

    def ask(self) -> Any:
        """A new trial with its values drawn; a TPE trial drawn at random says so."""
        from optuna.samplers import TPESampler
        from optuna.trial import TrialState

        study = self.study()
        startup = None
        if isinstance(study.sampler, TPESampler):
            done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            startup = len(done) < self.sampler.get("n_startup_trials", 10)
        trial = study.ask(self.space.distributions)
        trial.set_user_attr(SWEEP, self.sweep)
        if startup is not None:
            trial.set_user_attr(RANDOM_STARTUP, startup)
        return trial

    def overrides(self, trial: Any) -> list[str]:
        return self.space.overrides(trial.params)

    def tell(self, number: int, result: JobReturn | None) -> None:
        """Record a trial's end: pruned (its summary says so), complete with its objective, or
        failed (NaN, an error, a lost process)."""
        from optuna.trial import TrialState

        status, value = outcome(result)
        study = self.study()
        try:
            if status == "pruned":
                study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
            elif value is not None:
                study.tell(number, value, skip_if_finished=True)
            else:
                study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        except RuntimeError as exc:  # the grid sampler stops its study when the grid is done
            if "Study.stop" not in str(exc):
                raise


def outcome(result: JobReturn | None) -> tuple[str | None, float | None]:
    """The trial's status from its summary.json, and its finite objective."""
    from practicum.methodology.run_summary import RunSummary

    if result is None:
        return None, None
    try:
        summary = RunSummary.read(run_dir) if (run_dir := trial_dir(result)) else None
    except (OSError, ValueError, TypeError):
        summary = None
    try:
        value = float(result.return_value)
    except Exception:  # a failed job raises its error here
        value = math.nan
    return (summary.status if summary else None), (value if math.isfinite(value) else None)


def trial_dir(result: JobReturn) -> str | None:
    """The trial's run directory: Hydra's output dir of the job (its working dir is the launch
    folder), or where a lost trial was recorded."""
    from omegaconf import OmegaConf

    output = (
        OmegaConf.select(result.hydra_cfg, "hydra.runtime.output_dir") if result.hydra_cfg else None
    )
    return str(output) if output else result.working_dir


def run_in_slots(plan: Plan, slots: int, launch_one: Callable[[list[str], int], JobReturn]) -> None:
    """Keep `slots` trials running until the plan's trials are asked and all have ended."""
    with ThreadPoolExecutor(max(1, slots), thread_name_prefix="slot") as pool:
        running: dict[Future, int] = {}
        try:
            while True:
                while len(running) < slots and plan.asked() < plan.n_trials:
                    trial = plan.ask()
                    job = pool.submit(launch_one, plan.overrides(trial), trial.number)
                    running[job] = trial.number
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for job in done:
                    plan.tell(running.pop(job), job.result())
        except BaseException:  # Ctrl-C: start no further trial
            pool.shutdown(cancel_futures=True)
            raise


def run_in_batches(plan: Plan, size: int, launch: Callable[..., Any]) -> None:
    """For a launcher that runs only whole batches (Hydra's basic, joblib, submitit_local)."""
    while plan.asked() < plan.n_trials:
        trials = [plan.ask() for _ in range(min(size, plan.n_trials - plan.asked()))]
        returns = launch([plan.overrides(t) for t in trials], initial_job_idx=trials[0].number)
        for trial, result in zip(trials, returns, strict=True):
            plan.tell(trial.number, result)
