"""A search on SLURM: an array of workers that pull trials from the study until it holds
`n_trials`, each trial run in the worker's job the moment the previous one ends or is pruned.

No batch waits for its slowest trial, and the sweeper's process only watches. A worker asks the
study under a lock file in the sweep directory (one that holds on NFS), so workers never ask past
the budget. Each trial is tagged with its worker's SLURM job id:

- a worker that is lost (cancelled, out of memory or time, a failed node) leaves its trial
  running in the study; the launcher records that trial as one failed trial, as any lost job,
  and starts a worker in its place while trials are left to ask;
- a worker that is requeued (preempted, or out of time with `max_num_timeout`) first resumes its
  own trial from the trial's `last.ckpt`, then pulls on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from hydra_plugins.practicum_launcher.trials import Plan

SLURM_JOB = "slurm_job"  # user attr: the worker's job id
POLL_S = 2.0


class TrialWorker:
    """The function each job of the array runs (submitit pickles it whole)."""

    def __init__(self, hydra_context: HydraContext, config: DictConfig, task: TaskFunction) -> None:
        self.hydra_context, self.config, self.task_function = hydra_context, config, task

    def __call__(self, plan: Plan, index: int, singletons: dict[type, Singleton]) -> int:
        """Run trials until the study holds the plan's; return how many this worker ran."""
        import submitit

        Singleton.set_state(singletons)
        setup_globals()
        plan.seed_offset = index  # a random sampler of its own; grid and Sobol points are numbered
        job_id = submitit.JobEnvironment().job_id
        ran = 0
        for trial in own_running_trials(plan, job_id):  # requeued: its own trial first
            self.run(plan, trial.number, plan.overrides(trial), job_id)
            ran += 1
        while (trial := self.next_trial(plan, job_id)) is not None:
            self.run(plan, trial.number, plan.overrides(trial), job_id)
            ran += 1
        return ran

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Requeued by submitit (preemption, timeout): the same worker, called again."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)

    def next_trial(self, plan: Plan, job_id: str) -> Any:
        from optuna.storages.journal import JournalFileOpenLock

        lock = JournalFileOpenLock(str(Path(str(self.config.hydra.sweep.dir)) / ".ask.lock"))
        lock.acquire()
        try:
            if plan.asked() >= plan.n_trials:
                return None
            trial = plan.ask()
            trial.set_user_attr(SLURM_JOB, job_id)
            return trial
        finally:
            lock.release()

    def run(self, plan: Plan, number: int, overrides: list[str], job_id: str) -> None:
        from hydra_plugins.practicum_launcher.slurm import resume_if_requeued

        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = job_id
            sweep_config.hydra.job.num = number
        result = resume_if_requeued(sweep_config) or run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=sweep_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        plan.tell(number, result)


def own_running_trials(plan: Plan, job_id: str) -> list[Any]:
    from optuna.trial import TrialState

    running = plan.study().get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [t for t in running if t.user_attrs.get(SLURM_JOB) == job_id]


def watch_workers(launcher: Any, executor: Any, plan: Plan, jobs: list[Any], state: Any) -> None:
    """Wait for the workers; a lost one's trial is one failed trial, and a worker takes its place
    while trials are left to ask."""
    pending, index = list(jobs), len(jobs)
    while pending:
        done = [job for job in pending if job.done()]
        if not done:
            time.sleep(POLL_S)
            continue
        for job in done:
            pending.remove(job)
            if record_lost(launcher, plan, job) and plan.asked() < plan.n_trials:
                worker = TrialWorker(
                    launcher.hydra_context, launcher.config, launcher.task_function
                )
                pending.append(executor.submit(worker, plan, index, state))
                print(f"Submitted worker {index} as SLURM job {pending[-1].job_id}", flush=True)
                index += 1


def record_lost(launcher: Any, plan: Plan, job: Any) -> bool:
    """Record the trial a lost worker was running as failed; False for a worker that ended well."""
    from hydra_plugins.practicum_launcher.lost_trials import lost_trial
    from hydra_plugins.practicum_launcher.slurm import lost_reason
    from practicum.errors import report

    try:
        job.results()
        return False
    except Exception as exc:  # submitit's UncompletedJobError, FailedJobError
        reason = lost_reason(job, exc)
    for trial in own_running_trials(plan, job.job_id):
        report(f"trial {trial.number} failed: {reason}")
        overrides = plan.overrides(trial)
        result: JobReturn = lost_trial(
            launcher.hydra_context, launcher.config, overrides, trial.number, reason
        )
        plan.tell(trial.number, result)
    return True
