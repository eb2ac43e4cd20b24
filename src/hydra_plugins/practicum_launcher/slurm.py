"""`hydra/launcher=slurm`: the trials of a sweep as a SLURM job array, through submitit.

A search (practicum's Optuna sweeper) gets an array of workers that pull trials from its study
instead (`launch_workers`, slurm_workers.py). What it adds to Hydra's submitit launcher:
- before submitting, the request is checked against the partition's nodes and the requeue
  warning against the time limit (practicum/platform/cluster.py): a job that cannot run is one line, not a
  job that pends forever;
- a job that is cancelled, preempted, runs out of memory or time, or whose node fails, is one
  failed trial (lost_trials.py): the sweep or search goes on and its summary counts it;
- a trial requeued after a timeout or a preemption resumes from its own `last.ckpt` in its own run
  directory. submitit's signal handler owns the requeue (Lightning's SLURM auto-requeue is off:
  practicum.run.build passes Lightning a SLURM environment without it).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, run_job, setup_globals
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from omegaconf import DictConfig, OmegaConf, open_dict

from hydra_plugins.practicum_launcher.lost_trials import job_dir, lost_trial
from practicum.errors import UserError, report
from practicum.platform.ranks import is_rank_zero

log = logging.getLogger(__name__)
USER_ERROR_EXIT = 2
LAST = Path("checkpoints") / "last.ckpt"


class SlurmLauncher(BaseSubmititLauncher):
    _EXECUTOR = "slurm"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.checked = False

    def __call__(
        self,
        sweep_overrides: list[str],
        job_dir_key: str,
        job_num: int,
        job_id: str,
        singleton_state: dict[type, Singleton],
    ) -> JobReturn:
        """One trial, inside its SLURM job (every task of it, under DDP)."""
        import submitit

        assert self.hydra_context is not None and self.config is not None
        assert self.task_function is not None
        Singleton.set_state(singleton_state)
        setup_globals()
        sweep_config = self.hydra_context.config_loader.load_sweep_config(
            self.config, list(sweep_overrides)
        )
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = submitit.JobEnvironment().job_id
            sweep_config.hydra.job.num = job_num
        finished = resume_if_requeued(sweep_config)
        if finished is not None:
            return finished
        return run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=sweep_config,
            job_dir_key=job_dir_key,
            job_subdir_key="hydra.sweep.subdir",
        )

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None and self.hydra_context is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        if not self.checked:
            self.check_request(sweep_dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        executor = self.executor()
        log.info(f"Submitting {len(job_overrides)} trials to SLURM; sweep output dir: {sweep_dir}")
        numbered = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        for job_num, overrides in numbered:
            log.info(f"\t#{job_num} : {' '.join(filter_overrides(overrides))}")
        state = Singleton.get_state()
        arguments = [(o, "hydra.sweep.dir", n, f"job_id_for_{n}", state) for n, o in numbered]
        jobs = executor.map_array(self, *zip(*arguments, strict=True))
        ids = ", ".join(job.job_id for job in jobs)
        print(f"Submitted {len(jobs)} trials as SLURM jobs {ids}", flush=True)
        results: dict[int, JobReturn] = {}
        try:
            for job in submitit.helpers.as_completed(jobs):
                index = jobs.index(job)
                results[index] = self.result_of(job, *numbered[index])
        except KeyboardInterrupt:
            report(
                f"the launcher stopped; the trials' jobs run on (scancel {jobs[0].job_id.split('_')[0]} "
                f"stops them). Once they end: practicum-summarize {sweep_dir}"
            )
            raise
        return [results[i] for i in range(len(jobs))]

    def launch_workers(self, plan: Any, n_workers: int) -> None:
        """A search: an array of workers that pull trials from the study (slurm_workers.py). A
        trial that spans several tasks (DDP) runs in arrays of trials instead."""
        from hydra_plugins.practicum_launcher.slurm_workers import TrialWorker, watch_workers
        from hydra_plugins.practicum_launcher.trials import run_in_batches

        assert self.config is not None and self.hydra_context is not None
        if int(self.params.get("tasks_per_node") or 1) > 1:
            run_in_batches(plan, n_workers, self.launch)
            return
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        if not self.checked:
            self.check_request(sweep_dir)
        executor = self.executor()
        count = max(1, min(n_workers, plan.n_trials - plan.asked()))
        state = Singleton.get_state()
        worker = TrialWorker(self.hydra_context, self.config, self.task_function)
        jobs = executor.map_array(worker, [plan] * count, list(range(count)), [state] * count)
        ids = ", ".join(job.job_id for job in jobs)
        print(
            f"Submitted {count} workers for {plan.n_trials} trials as SLURM jobs {ids}", flush=True
        )
        try:
            watch_workers(self, executor, plan, jobs, state)
        except KeyboardInterrupt:
            report(
                f"the launcher stopped; the workers run on (scancel {jobs[0].job_id.split('_')[0]} "
                f"stops them). Once they end: practicum-summarize {sweep_dir}"
            )
            raise

    def check_request(self, sweep_dir: Path) -> None:
        """A request no node can satisfy, or a requeue warning longer than the time limit, is one
        line before anything is submitted; the sweep's folder is not left behind."""
        from practicum.platform.cluster import check_fits, check_signal_delay, read_partitions

        try:
            check_signal_delay(self.params)
            check_fits(self.params, read_partitions())
        except UserError as exc:
            report(str(exc))
            _discard_empty_sweep(sweep_dir)
            sys.exit(USER_ERROR_EXIT)
        self.checked = True

    def executor(self) -> Any:
        """submitit's executor with the launcher's parameters (as Hydra's submitit launcher)."""
        import submitit

        params = dict(self.params)
        init = {"folder": params.pop("submitit_folder")}
        if "max_num_timeout" in params:
            init["slurm_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{(k if k in shared else f"slurm_{k}"): v for k, v in params.items()}
        )
        return executor

    def result_of(self, job: Any, job_num: int, overrides: list[str]) -> JobReturn:
        """The trial's own result; a job that ended without one is a failed trial."""
        try:
            return job.results()[0]
        except Exception as exc:  # submitit's UncompletedJobError, FailedJobError
            reason = lost_reason(job, exc)
            report(f"trial {job_num} failed: {reason}")
            assert self.config is not None and self.hydra_context is not None
            return lost_trial(self.hydra_context, self.config, overrides, job_num, reason)


def lost_reason(job: Any, exc: Exception) -> str:
    """Why a job returned no result, in words: its SLURM state, or the error it raised."""
    try:
        state = str(job.state)
    except Exception:  # sacct unreachable
        state = "UNKNOWN"
    if type(exc).__name__ == "FailedJobError":
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return f"its SLURM job {job.job_id} raised {lines[-1].strip() if lines else exc!r}"
    return f"its SLURM job {job.job_id} ended {state.split()[0] if state else 'UNKNOWN'}"


def resume_if_requeued(sweep_config: DictConfig) -> JobReturn | None:
    """A trial that runs again in a run directory it already trained in (requeued after a timeout
    or a preemption) goes on from its last.ckpt; one that had finished is not run again."""
    from practicum.methodology.run_summary import RunSummary

    run_dir = job_dir(sweep_config)
    summary = RunSummary.read(run_dir)
    if summary is not None and (summary.finished or summary.status == "pruned"):
        log.info("trial %s had finished before it was requeued", sweep_config.hydra.job.num)
        task_overrides = OmegaConf.to_container(sweep_config.hydra.overrides.task)
        ret = JobReturn(
            overrides=task_overrides,
            working_dir=str(run_dir),
            task_name=str(sweep_config.hydra.job.name),
            status=JobStatus.COMPLETED,
        )
        ret.return_value = summary.objective
        return ret
    if not (run_dir / LAST).is_file():
        return None  # requeued before its first epoch ended, or not requeued: a fresh start
    if is_rank_zero():
        from practicum.run.resume import keep_config_record

        keep_config_record(run_dir)
    from practicum.run.checkpoints import progress_text

    last = run_dir / LAST
    where = progress_text(str(last))
    print(f"Requeued: trial {sweep_config.hydra.job.num} resumes from {last} ({where})", flush=True)
    with open_dict(sweep_config):
        sweep_config.ckpt_path = "last"
    return None


def _discard_empty_sweep(sweep_dir: Path) -> None:
    """The sweep's folder, when it holds nothing but the config Hydra saved before launching."""
    if not sweep_dir.is_dir():
        return
    leftovers = [p for p in sweep_dir.iterdir() if p.name != "multirun.yaml"]
    if leftovers:
        return
    for path in sweep_dir.iterdir():
        path.unlink()
    sweep_dir.rmdir()
