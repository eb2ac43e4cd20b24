"""`search.repeats=N`: one trial trained over N seeds, its objective their mean."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, open_dict
from rich.console import Console

from practicum.config.goal import Goal
from practicum.methodology.run_summary import RunSummary, finite_or_none

if TYPE_CHECKING:
    from practicum.run.one_run import RunOne


def repeat_over_seeds(cfg: DictConfig, run_one: RunOne) -> float:
    """Train with seeds seed..seed+N-1 in seed_<s>/ and report their mean in this directory."""
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    goal = Goal.from_config(cfg.goal)
    runs, finished = [], []
    for seed in range(int(cfg.seed), int(cfg.seed) + int(cfg.search.repeats)):
        single = cfg.copy()
        with open_dict(single):
            single.seed = seed
            single.paths.output_dir = str(output_dir / f"seed_{seed}")
        value = finite_or_none(run_one(single))
        runs.append({"seed": seed, "objective": value, "run_dir": single.paths.output_dir})
        summary = RunSummary.read(single.paths.output_dir)
        if value is not None and summary is not None:
            finished.append(summary)
    values = [run["objective"] for run in runs if run["objective"] is not None]
    mean = statistics.fmean(values) if values else None
    keys = set().union(*(s.metrics for s in finished)) if finished else set()
    summary = RunSummary(
        # the mean stands on the seeds that finished; a seed that failed is listed with objective null
        status="completed" if values else "failed",
        run_dir=str(output_dir),
        goal=goal.as_dict(),
        task_name=cfg.task_name,
        objective=mean,
        objective_std=statistics.stdev(values) if len(values) > 1 else None,
        goal_met=goal.met(mean),
        metrics={
            k: statistics.fmean(s.metrics[k] for s in finished if k in s.metrics) for k in keys
        },
        seeds=runs,
        error=None if values else "no seed finished with a finite objective",
        wall_time_s=round(time.perf_counter() - started, 3),
    )
    summary.write()
    std = summary.objective_std
    Console().print(
        f"Mean {goal.metric} over {len(values)} of {len(runs)} seeds: {mean} (std {std})"
    )
    return float("nan") if mean is None else mean
