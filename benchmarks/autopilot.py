"""Section `autopilot`: the autopilot against random search (`search=random`) at the same run budget.

Five scenarios on digits where the default config misses its goal, each for another reason of the
lecture: under capacity, too few epochs, a learning rate too low, one too high, overfitting a small
training set. Each method gets the same number of runs; per scenario and seed: goal reached,
runs to the goal, wall time, best val objective. Random search searches the model's space
(conf/search/space/mlp.yaml: lr, weight decay, dropout, width, depth) around the same config.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from rich.table import Table

from common import Settings, python_script, run_process

COMMON = ["model=mlp", "diagnosis.baseline_model=null", "callbacks.progress_bar=null"]
SCENARIOS: dict[str, list[str]] = {
    "under_capacity": [
        "model.net.hidden_units=4",
        "model.net.depth=1",
        "model.net.dropout=0",
        "optimizer.lr=1e-2",
        "trainer.max_epochs=20",
        "goal.target=0.93",
    ],
    "too_few_epochs": ["optimizer.lr=3e-4", "trainer.max_epochs=1", "goal.target=0.9"],
    "lr_too_low": ["optimizer.lr=1e-6", "trainer.max_epochs=10", "goal.target=0.9"],
    "lr_too_high": ["optimizer=sgd", "optimizer.lr=3", "trainer.max_epochs=10", "goal.target=0.9"],
    "overfitting": [
        "data.train_subset=200",
        "model.net.hidden_units=512",
        "model.net.dropout=0",
        "trainer.max_epochs=40",
        "goal.target=0.9",
    ],
}
TARGET_SCENARIOS, TARGET_RUNS = 4, 8


def autopilot_once(tmp: Path, name: str, seed: int, budget: int) -> dict[str, Any]:
    log_dir = tmp / f"autopilot-{name}-{seed}"
    args = ["autopilot=default", f"autopilot.max_runs={budget}", *COMMON, *SCENARIOS[name]]
    run = run_process(python_script("train.py", *args, f"seed={seed}", f"paths.log_dir={log_dir}"))
    states = list(log_dir.glob("*/autopilot/*/autopilot.json"))
    if not states:
        return {
            "reached": False,
            "runs": None,
            "wall_s": run.wall_s,
            "best": None,
            "error": run.tail(3),
        }
    state = json.loads(states[0].read_text())
    return {
        "reached": bool(state["goal_met"]),
        "runs": state["runs"] if state["goal_met"] else None,
        "wall_s": run.wall_s,
        "best": (state.get("objective") or {}).get("val"),
        "stop": state["stop_reason"],
    }


def random_once(tmp: Path, name: str, seed: int, budget: int) -> dict[str, Any]:
    log_dir = tmp / f"random-{name}-{seed}"
    args = ["-m", "search=random", f"search.n_trials={budget}", f"search.seed={seed}"]
    run = run_process(
        python_script(
            "train.py", *args, *COMMON, *SCENARIOS[name], f"seed={seed}", f"paths.log_dir={log_dir}"
        )
    )
    trials = []
    for path in log_dir.glob("*/multiruns/*/*/summary.json"):
        summary = json.loads(path.read_text())
        trials.append((int(path.parent.name), summary.get("objective"), summary.get("goal_met")))
    trials.sort()
    met = [number for number, _, goal_met in trials if goal_met]
    values = [value for _, value, _ in trials if value is not None]
    return {
        "reached": bool(met),
        "runs": met[0] + 1 if met else None,
        "wall_s": run.wall_s,
        "best": max(values) if values else None,
    }


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    seeds = list(range(settings.count(3, 1)))
    budget = TARGET_RUNS
    names = list(SCENARIOS) if not settings.quick else list(SCENARIOS)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-autopilot-") as tmp:
        for name in names:
            results[name] = {"autopilot": [], "random": []}
            for seed in seeds:
                for method, once in (("autopilot", autopilot_once), ("random", random_once)):
                    outcome = once(Path(tmp), name, seed, budget)
                    results[name][method].append(outcome)
                    log(f"{name} seed {seed} {method}: {outcome}")
    reached = sum(
        statistics.fmean(r["reached"] for r in results[n]["autopilot"]) >= 0.5 for n in names
    )
    return {
        "budget": budget,
        "seeds": seeds,
        "scenarios": results,
        "autopilot_reached": reached,
        "meets_target": reached >= TARGET_SCENARIOS,
    }


def _mean(values: list[float | None]) -> str:
    found = [v for v in values if v is not None]
    return f"{statistics.fmean(found):.3g}" if found else "-"


def table(result: dict[str, Any]) -> Table:
    out = Table(
        title=f"autopilot vs random search, {result['budget']} runs each, seeds {result['seeds']}"
    )
    for column in ("scenario", "method", "goal reached", "runs to goal", "wall s", "best val"):
        out.add_column(column)
    for name, methods in result["scenarios"].items():
        for method, runs in methods.items():
            out.add_row(
                name,
                method,
                f"{sum(r['reached'] for r in runs)}/{len(runs)}",
                _mean([r["runs"] for r in runs]),
                _mean([r["wall_s"] for r in runs]),
                _mean([r["best"] for r in runs]),
            )
    out.caption = (
        f"autopilot reached the goal in {result['autopilot_reached']} of {len(result['scenarios'])} "
        f"scenarios (target {TARGET_SCENARIOS} within {TARGET_RUNS} runs)"
    )
    return out
