"""A trial whose process ended without returning a result (killed by the out-of-memory killer's
SIGKILL, a segfault, a node that went away) is one failed trial of the sweep, not the end of it.

Whatever launched it calls `lost_trial`: the trial's run directory gets a failed summary.json that
says why (unless the trial wrote its own), and the sweeper gets a failed `JobReturn`. Nothing here
knows how the trial was launched: the local-parallel launcher uses it for a process that died, and
a SLURM launcher can use it for a job that submitit reports lost.
"""

from __future__ import annotations

import logging
import math
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


@dataclass
class LostTrialReturn(JobReturn):
    """The `JobReturn` of a lost trial: status FAILED, and to a sweeper that reads its value, NaN.

    NaN is what every failed practicum trial gives the sweeper: Optuna records the trial as failed
    and proposes the next, and Hydra's basic sweeper goes on, where reading a stock failed
    `JobReturn` would raise and end the sweep.
    """

    reason: str = ""  # why the trial returned no result

    @property
    def return_value(self) -> float:
        return math.nan


def job_config(
    hydra_context: HydraContext, config: DictConfig, overrides: Sequence[str], job_num: int
) -> DictConfig:
    """The config of job `job_num` of the sweep, as the job itself sees it."""
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{job_num}"
        sweep_config.hydra.job.num = job_num
    return sweep_config


def job_dir(sweep_config: DictConfig) -> Path:
    """Where Hydra's `run_job` puts the job: hydra.sweep.dir / hydra.sweep.subdir."""
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(sweep_config)  # for ${hydra:...} in the two paths
    try:
        sweep = sweep_config.hydra.sweep
        return Path(str(sweep.dir), str(sweep.subdir)).absolute()
    finally:
        hydra_config.cfg = previous


def exit_reason(returncode: int) -> str:
    """A process's exit status in words: `killed by signal 9 (SIGKILL, ...)`."""
    if returncode >= 0:
        return f"its process exited with code {returncode} before returning a result"
    number = -returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "an unknown signal"
    if number == signal.SIGKILL:
        name += ", as the out-of-memory killer sends when memory runs out"
    return f"its process was killed by signal {number} ({name})"


def lost_trial(
    hydra_context: HydraContext,
    config: DictConfig,
    overrides: Sequence[str],
    job_num: int,
    reason: str,
) -> JobReturn:
    """Record job `job_num` as a failed trial in its run directory and return its failed result."""
    sweep_config = job_config(hydra_context, config, overrides, job_num)
    run_dir = job_dir(sweep_config)
    task_overrides = OmegaConf.to_container(sweep_config.hydra.overrides.task, resolve=False)
    try:
        record(run_dir, sweep_config, task_overrides, reason)
    except OSError as exc:  # the sweep goes on even where the run directory cannot be written
        log.warning("trial %s: failed summary not written to %s: %s", job_num, run_dir, exc)
    return LostTrialReturn(
        overrides=task_overrides,
        working_dir=str(run_dir),
        task_name=str(sweep_config.hydra.job.name),
        status=JobStatus.FAILED,
        reason=reason,
    )


def record(run_dir: Path, sweep_config: DictConfig, overrides: list, reason: str) -> None:
    """A failed summary.json, unless the trial wrote its own (finished, failed, pruned, or
    `interrupted` with the command that resumes it: the sweep still counts it failed); and the
    overrides Hydra saves before a job starts, if it died before that, so that the sweep summary
    lists it."""
    from practicum.methodology.run_summary import RunSummary

    subdir = sweep_config.hydra.output_subdir
    saved = run_dir / str(subdir) / "overrides.yaml" if subdir is not None else None
    if saved is not None and not saved.exists():
        saved.parent.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(overrides), saved)
    try:
        before = RunSummary.read(run_dir)
    except (ValueError, TypeError):  # a summary cut off mid-write reads as none
        before = None
    if before is not None and (
        before.finished or before.status in ("failed", "pruned", "interrupted")
    ):
        return  # a trial's own record, with its resume command, is never rewritten
    goal = sweep_config.get("goal") or {}
    said = f" (the run had said: {before.error})" if before is not None and before.error else ""
    RunSummary.unfinished(
        "failed",
        run_dir,
        {key: goal.get(key) for key in ("metric", "mode", "target")},
        f"trial lost: {reason}{said}",
        task_name=sweep_config.get("task_name"),
    ).write()
