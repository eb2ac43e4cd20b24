"""Section `autopilot`: the autopilot against random search (`search=random`) at the same run budget.

Five scenarios on digits where the default config misses its goal, each for another reason of the
lecture: under capacity, too few epochs, a learning rate too low, one too high, overfitting a small
training set. Each method gets the same number of runs; per scenario and seed: goal reached,
runs to the goal, wall time, best val objective. Random search searches the model's space
(conf/search/space/mlp.yaml: lr, weight decay, dropout, width, depth) around the same config.

A key set on the command line wins over the value Hydra's sweeper draws, so random search gets
the scenario without the keys its space holds: it searches every one of them, the setting that
is wrong included (its trials' overrides are read back to check that each key varied). The
autopilot starts from the whole scenario, its baseline.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
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
    # SGD at lr 3 diverged with seed 0 only (seeds 1 and 2 read as too_few_steps); at 10 it
    # diverges with every seed
    "lr_too_high": ["optimizer=sgd", "optimizer.lr=10", "trainer.max_epochs=10", "goal.target=0.9"],
    "overfitting": [
        "data.train_subset=200",
        "model.net.hidden_units=512",
        "model.net.dropout=0",
        "trainer.max_epochs=100",
        # at 0.9 the baseline met the goal (val acc 0.937-0.959 over seeds 0-2); 0.96 makes it
        # miss with train acc 1.0, case `overfitting` with every seed (at 40 epochs, or with 100
        # or 150 examples, some seeds read as too_few_steps: the val loss was still falling)
        "goal.target=0.96",
    ],
}
TARGET_SCENARIOS, TARGET_RUNS = 4, 8
CONF = Path(__file__).resolve().parents[1] / "conf"


def space_keys(overrides: list[str]) -> list[str]:
    """The keys of the search space of the model these overrides pick (conf/search/space/)."""
    model = next(o.split("=", 1)[1] for o in overrides if o.startswith("model="))
    return list(OmegaConf.load(CONF / "search" / "space" / f"{model}.yaml"))


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def random_overrides(name: str) -> list[str]:
    """The scenario less the keys random search searches (they would pin its draws)."""
    searched = set(space_keys(COMMON))
    return [o for o in SCENARIOS[name] if _key(o) not in searched]


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
        "used": state["runs"],
        "wall_s": run.wall_s,
        "best": (state.get("objective") or {}).get("val"),
        "stop": state["stop_reason"],
    }


def random_once(tmp: Path, name: str, seed: int, budget: int) -> dict[str, Any]:
    log_dir = tmp / f"random-{name}-{seed}"
    args = ["-m", "search=random", f"search.n_trials={budget}", f"search.seed={seed}"]
    scenario = random_overrides(name)
    run = run_process(
        python_script(
            "train.py", *args, *COMMON, *scenario, f"seed={seed}", f"paths.log_dir={log_dir}"
        )
    )
    trials, drawn = [], {key: set() for key in space_keys(COMMON)}
    for path in log_dir.glob("*/multiruns/*/*/summary.json"):
        summary = json.loads(path.read_text())
        trials.append((int(path.parent.name), summary.get("objective"), summary.get("goal_met")))
        for override in OmegaConf.load(path.parent / ".hydra" / "overrides.yaml"):
            if _key(override) in drawn:
                drawn[_key(override)].add(override.split("=", 1)[1])
    trials.sort()
    met = [number for number, _, goal_met in trials if goal_met]
    values = [value for _, value, _ in trials if value is not None]
    return {
        "reached": bool(met),
        "runs": met[0] + 1 if met else None,
        "wall_s": run.wall_s,
        "best": max(values) if values else None,
        "used": len(trials),  # a sweep runs all its trials: it does not stop at the goal
        # distinct values each searched key took over the trials (1 would mean it was pinned)
        "distinct": {key: len(values) for key, values in drawn.items()},
        **({} if trials else {"error": run.tail(3)}),
    }


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    seeds = list(range(settings.count(3, 1)))
    budget = TARGET_RUNS
    names = list(SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="bench-autopilot-") as tmp:
        results = {name: {"autopilot": [], "random": []} for name in names}
        for seed in seeds:  # a whole seed at a time: a cut-short run still covers every scenario
            for name in names:
                for method, once in (("autopilot", autopilot_once), ("random", random_once)):
                    outcome = once(Path(tmp), name, seed, budget)
                    results[name][method].append(outcome)
                    log(f"{name} seed {seed} {method}: {outcome}")
    reached = sum(
        statistics.fmean(r["reached"] for r in results[n]["autopilot"]) >= 0.5 for n in names
    )
    mean_runs = {
        method: statistics.fmean(r["runs"] or budget + 1 for n in names for r in results[n][method])
        for method in ("autopilot", "random")
    }
    return {
        "budget": budget,
        "seeds": seeds,
        "scenarios": results,
        "autopilot_reached": reached,
        "mean_runs": mean_runs,  # a miss counts as budget + 1
        "meets_target": reached >= TARGET_SCENARIOS
        and mean_runs["autopilot"] < mean_runs["random"],
    }


def _mean(values: list[float | None]) -> str:
    found = [v for v in values if v is not None]
    return f"{statistics.fmean(found):.3g}" if found else "-"


def table(result: dict[str, Any]) -> Table:
    out = Table(
        title=f"autopilot vs random search, {result['budget']} runs each, seeds {result['seeds']}"
    )
    columns = (
        "scenario",
        "method",
        "goal reached",
        "runs to goal",
        "runs used",
        "wall s",
        "best val",
    )
    for column in columns:
        out.add_column(column)
    for name, methods in result["scenarios"].items():
        for method, runs in methods.items():
            out.add_row(
                name,
                method,
                f"{sum(r['reached'] for r in runs)}/{len(runs)}",
                _mean([r["runs"] for r in runs]),
                _mean([r.get("used") for r in runs]),
                _mean([r["wall_s"] for r in runs]),
                _mean([r["best"] for r in runs]),
            )
    out.caption = (
        f"autopilot reached the goal in {result['autopilot_reached']} of {len(result['scenarios'])} "
        f"scenarios (target {TARGET_SCENARIOS} within {TARGET_RUNS} runs); runs to the goal, "
        f"a miss counted as {result['budget'] + 1}: autopilot {result['mean_runs']['autopilot']:.2f}, "
        f"random {result['mean_runs']['random']:.2f}"
    )
    return out
