"""practicum's Optuna sweeper (`hydra/sweeper=practicum_optuna`, which `search=...` picks).

Hydra's own Optuna sweeper hides the trial object from the trial and runs synchronous batches:
it proposes `n_jobs` trials, the launcher runs them, and the next batch waits for the slowest.
This one keeps the study on disk (`search.storage`, or `study.journal` in the sweep directory)
and hands each trial only its number in it (its job number), so the trial's own process reports
every epoch and Optuna's pruner decides (practicum/run/pruning.py). The trials are scheduled
without a batch barrier:

- local_parallel (`launch_one`): `n_jobs` slots; when a trial ends or is pruned the next one is
  asked and started in its slot (trials.py);
- slurm (`launch_workers`): an array of `n_jobs` workers, each pulling trials from the study until
  it holds `n_trials` (slurm_workers.py);
- any other launcher: batches of `n_jobs`, as Hydra's sweeper runs them.

Samplers (conf/hydra/sweeper/sampler, Hydra's Optuna plugin): random, qmc (quasi-random), tpe,
grid. Grid and quasi-random points are numbered in the study, so their point sets do not depend
on the order in which trials end.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from hydra_plugins.practicum_launcher.search_space import SearchSpace
from hydra_plugins.practicum_launcher.trials import Plan, run_in_batches, run_in_slots
from practicum.errors import UserError
from practicum.run.study_trial import PRUNERS, storage_url

log = logging.getLogger(__name__)


class OptunaSweeper(Sweeper):
    def __init__(
        self,
        sampler: Any,
        direction: str,
        n_trials: int,
        n_jobs: int = 1,
        storage: str | None = None,
        study_name: str | None = None,
        pruner: str = "none",
        min_resource: int = 1,
        reduction_factor: int = 3,
        params: Any = None,
    ) -> None:
        self.sampler = sampler
        self.direction = str(direction)
        self.n_trials, self.n_jobs = int(n_trials), max(1, int(n_jobs))
        self.storage, self.study_name = storage, study_name
        self.pruner = str(pruner)
        self.min_resource, self.reduction_factor = int(min_resource), int(reduction_factor)
        self.params = params
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None
        plan = self.plan(arguments)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if hasattr(self.launcher, "launch_workers"):
            schedule = "workers"
        else:
            schedule = "slots" if hasattr(self.launcher, "launch_one") else "batches"
        self.save_config(sweep_dir, plan, schedule)
        log.info(f"Study {plan.study_name} in {plan.storage}: {plan.n_trials} trials, {schedule}")
        if schedule == "workers":
            self.launcher.launch_workers(plan, self.n_jobs)
        elif schedule == "slots":
            run_in_slots(plan, self.n_jobs, self.launcher.launch_one)
        else:
            run_in_batches(plan, self.n_jobs, self.launcher.launch)

    def plan(self, arguments: list[str]) -> Plan:
        """What asking and telling need; bad search settings are one line."""
        assert self.config is not None
        if self.pruner not in PRUNERS:
            raise UserError(
                f"search.pruner={self.pruner} is not a pruner: choose one of {', '.join(PRUNERS)}"
            )
        repeats = int(OmegaConf.select(self.config, "search.repeats", default=1) or 1)
        if self.pruner != "none" and repeats > 1:
            raise UserError(
                f"search.pruner={self.pruner} with search.repeats={repeats}: a trial over several "
                "seeds has no one curve to prune; pass search.pruner=none or search.repeats=1"
            )
        params = OmegaConf.to_container(self.params, resolve=True) if self.params else {}
        space = SearchSpace.parse(params, arguments)
        sampler = OmegaConf.to_container(self.sampler, resolve=True)
        storage = storage_url(self.storage, str(self.config.hydra.sweep.dir))
        plan = Plan(
            storage=storage,
            study_name=str(self.study_name or "search"),
            direction=self.direction,
            sampler=sampler,
            space=space,
            n_trials=self.n_trials,
            sweep=str(Path(str(self.config.hydra.sweep.dir)).absolute()),
            pruner=self.pruner,
            min_resource=self.min_resource,
            reduction_factor=self.reduction_factor,
            max_epochs=OmegaConf.select(self.config, "trainer.max_epochs", default=None),
        )
        if str(sampler.get("_target_", "")).endswith("GridSampler"):
            size = 1
            for values in space.grid().values():
                size *= len(values)
            plan.n_trials = min(plan.n_trials, size)
        return plan

    def save_config(self, sweep_dir: Path, plan: Plan, schedule: str) -> None:
        """multirun.yaml, with the study's storage, name and slots as they were resolved: what
        practicum-summarize and practicum-dashboard read back."""
        assert self.config is not None
        config = OmegaConf.create(OmegaConf.to_container(self.config, resolve=False))
        resolved = {
            "storage": plan.storage,
            "study_name": plan.study_name,
            "direction": plan.direction,
            "n_jobs": min(self.n_jobs, plan.n_trials),
            "n_trials": plan.n_trials,
            "pruner": plan.pruner,
            "min_resource": plan.min_resource,
            "reduction_factor": plan.reduction_factor,
            "sampler": plan.sampler,
            "schedule": schedule,  # slots, workers or batches: how the trials were run
        }
        with open_dict(config):
            config.hydra.sweeper.update(resolved)
        OmegaConf.save(config, sweep_dir / "multirun.yaml")
