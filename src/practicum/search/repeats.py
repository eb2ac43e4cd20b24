"""`search.repeats=N`: one trial trained over N seeds, its objective their mean."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from omegaconf import DictConfig, open_dict

from practicum.methodology.goal import Goal
from practicum.methodology.summary import finite_or_none, write_json
from practicum.run import console, train_run


def repeat_over_seeds(cfg: DictConfig) -> float:
    """`search.repeats=N`: train with seeds seed..seed+N-1 in seed_<s>/ and report their mean."""
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    goal = Goal.from_config(cfg.goal)
    runs, summaries = [], []
    for seed in range(int(cfg.seed), int(cfg.seed) + int(cfg.search.repeats)):
        single = cfg.copy()
        with open_dict(single):
            single.seed = seed
            single.search.repeats = 1
            single.paths.output_dir = str(output_dir / f"seed_{seed}")
        value = finite_or_none(train_run(single))
        runs.append({"seed": seed, "objective": value, "run_dir": single.paths.output_dir})
        if value is not None:
            summaries.append(
                json.loads((Path(single.paths.output_dir) / "summary.json").read_text())
            )
    values = [run["objective"] for run in runs if run["objective"] is not None]
    mean = statistics.fmean(values) if values else None
    keys = set().union(*(s["metrics"] for s in summaries)) if summaries else set()
    summary = {
        "task_name": cfg.task_name,
        "run_dir": str(output_dir),
        "goal": goal.as_dict(),
        "objective": mean,
        "objective_std": statistics.stdev(values) if len(values) > 1 else None,
        "goal_met": goal.met(mean),
        "metrics": {
            k: statistics.fmean(s["metrics"][k] for s in summaries if k in s["metrics"])
            for k in keys
        },
        "seeds": runs,
        # the mean stands on the seeds that finished; a seed that failed is listed with objective null
        "status": "completed" if values else "failed",
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    write_json(output_dir / "summary.json", summary)
    std = summary["objective_std"]
    console.print(f"Mean {goal.metric} over {len(values)} of {len(runs)} seeds: {mean} (std {std})")
    return float("nan") if mean is None else mean
