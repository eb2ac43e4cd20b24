"""`hydra/launcher=local_parallel`: the trials of a sweep on this machine, each in a process of its
own, at most `n_jobs` at once.

A trial's process that dies (the out-of-memory killer's SIGKILL, a segfault) takes nothing with it:
its trial is one failed trial (lost_trials.py) and its siblings and the remaining trials run on.
A pool of shared worker processes (joblib's loky) ends the whole sweep when one worker dies.

A fresh Python process would pay the import of torch and Lightning in every trial (about 5 s here).
So the trials' processes are forked from a fork server (the standard library's `forkserver`) that
imported them once: each trial still gets a process of its own, started in milliseconds. Where
there is no fork server (Windows), each trial is a new interpreter.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.practicum_launcher.lost_trials import exit_reason, lost_trial
from practicum.errors import report

log = logging.getLogger(__name__)
WORKER = "hydra_plugins.practicum_launcher._worker"
# imported once by the fork server, before it forks the trials' processes
PRELOAD = ["torch", "lightning.pytorch", "practicum.run.one_run", WORKER]
# lost trials are recorded one at a time: recording one sets Hydra's global config for a moment
_recording = threading.Lock()
_preparing = threading.Lock()


class LocalParallelLauncher(Launcher):
    def __init__(self, n_jobs: int = 2) -> None:
        if int(n_jobs) == 0:
            raise ValueError(
                "hydra.launcher.n_jobs=0: give the trials to run at once, or -1 for one per core"
            )
        self.n_jobs = int(n_jobs)
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self.shared: bytes | None = None  # launch_one's pickled job context, made once

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        at_once = concurrent_jobs(self.n_jobs)
        shared = self.prepare()
        log.info(
            f"Launching {len(job_overrides)} jobs, {at_once} at a time, each in its own process"
        )
        for offset, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + offset} : {' '.join(filter_overrides(overrides))}")
        jobs = [(initial_job_idx + offset, list(o)) for offset, o in enumerate(job_overrides)]
        with ThreadPoolExecutor(at_once, thread_name_prefix="trial") as pool:
            futures = [pool.submit(self.run_one, shared, *job) for job in jobs]
            try:
                return [future.result() for future in futures]
            except BaseException:  # Ctrl-C: start no further trial
                pool.shutdown(cancel_futures=True)
                raise

    def launch_one(self, overrides: Sequence[str], job_num: int) -> JobReturn:
        """One trial in its own process, for a sweeper that keeps its own slots (callable from
        several threads at once)."""
        with _preparing:
            if self.shared is None:
                self.shared = self.prepare()
        log.info(f"\t#{job_num} : {' '.join(filter_overrides(overrides))}")
        return self.run_one(self.shared, job_num, list(overrides))

    def prepare(self) -> bytes:
        """Hydra's logging and the sweep folder; what every job needs, pickled once (cloudpickle:
        the task function may be a closure, which plain pickle cannot carry to another process)."""
        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(
            self.config.hydra.hydra_logging,
            self.config.hydra.verbose,
            execution_whitelist=self.hydra_context.execution_whitelist,
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Sweep output dir : {sweep_dir}")
        import cloudpickle

        return cloudpickle.dumps(
            (self.hydra_context, self.config, self.task_function, Singleton.get_state())
        )

    def run_one(self, shared: bytes, job_num: int, overrides: list[str]) -> JobReturn:
        """Run one job in a new Python process; a process that ends without a result is a lost
        trial."""
        with tempfile.TemporaryDirectory(prefix="practicum-trial-") as folder:
            job_file, result_file = Path(folder) / "job.pkl", Path(folder) / "job.result"
            # the launching process's import path, so the task function imports as it does here
            job = {
                "sys_path": sys.path,
                "shared": shared,
                "job_num": job_num,
                "overrides": overrides,
            }
            job_file.write_bytes(pickle.dumps(job))
            returncode = run_worker(job_file, result_file)
            if returncode == 0 and result_file.is_file():
                return pickle.loads(result_file.read_bytes())
        reason = exit_reason(returncode)
        report(f"trial {job_num} failed: {reason}")
        assert self.config is not None and self.hydra_context is not None
        with _recording:
            return lost_trial(self.hydra_context, self.config, overrides, job_num, reason)


def run_worker(job_file: Path, result_file: Path) -> int:
    """Run one trial's worker in a process of its own; its exit status (-N: killed by signal N)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        process = subprocess.run(
            [sys.executable, "-m", WORKER, str(job_file), str(result_file)],
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return process.returncode
    from hydra_plugins.practicum_launcher import _worker

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    process = context.Process(
        target=_worker.main, args=(str(job_file), str(result_file)), name="trial"
    )
    process.start()
    process.join()
    return process.exitcode if process.exitcode is not None else 1


def concurrent_jobs(n_jobs: int) -> int:
    """How many jobs run at once: n_jobs, or for n_jobs < 0 joblib's reading (-1: one per core,
    -2: all cores but one)."""
    return max(1, n_jobs if n_jobs > 0 else (os.cpu_count() or 1) + 1 + n_jobs)
