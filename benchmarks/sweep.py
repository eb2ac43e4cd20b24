"""Section `sweep`: eight short trials, serial (basic launcher) vs local-parallel (2 jobs).

The trials are an lr grid over a fixed MLP, so all eight cost the same and both launchers do the
same work: this measures the launcher. The sweeps alternate (serial first, then parallel first);
the ratio parallel / serial is taken per repeat and reported as median, min and max. (A random search over widths and depths gives trials of
unequal cost, and Optuna proposes them in batches of n_jobs, each batch waiting for its slowest.)
"""

from __future__ import annotations

import csv
import statistics
import tempfile
from pathlib import Path
from typing import Any

from rich.table import Table

from common import BenchError, Settings, mark, python_script, require_success, run_process, spread

TRIALS = 8
TARGET_RATIO = 0.65
LAUNCHERS = {"serial": [], "local_parallel": ["hydra/launcher=local_parallel"]}


def sweep_command(log_dir: Path, epochs: int, launcher: str) -> list[str]:
    return python_script(
        "train.py",
        "-m",
        "optimizer.lr=" + ",".join(f"{k}e-3" for k in range(1, TRIALS + 1)),
        "model=mlp",
        f"trainer.max_epochs={epochs}",
        # every trial runs its full length, so both launchers do the same work
        f"callbacks.early_stopping.patience={epochs + 1}",
        "diagnosis.baseline_model=null",
        "callbacks.progress_bar=null",
        f"paths.log_dir={log_dir}",
        *LAUNCHERS[launcher],
    )


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    # a trial takes about 3-4 s on this 2-core machine (one thread)
    epochs = settings.size(150, 25)
    repeats = settings.count(2, 1)
    sweeps: dict[str, list[dict[str, Any]]] = {name: [] for name in LAUNCHERS}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        for i in range(repeats):
            order = list(LAUNCHERS) if i % 2 == 0 else list(reversed(LAUNCHERS))
            for launcher in order:
                log_dir = Path(tmp) / f"{launcher}-{i}"
                run = require_success(
                    run_process(sweep_command(log_dir, epochs, launcher)), f"{launcher} sweep"
                )
                trials = read_trials(log_dir)
                sweeps[launcher].append({"wall_s": run.wall_s, "cpu_s": run.cpu_s, **trials})
                log(f"sweep {i + 1}/{repeats} {launcher}: {run.wall_s:.1f} s")

    walls = {name: spread([s["wall_s"] for s in runs]) for name, runs in sweeps.items()}
    ratios = spread(
        [
            parallel["wall_s"] / serial["wall_s"]
            for parallel, serial in zip(sweeps["local_parallel"], sweeps["serial"], strict=True)
        ]
    )
    ratio = ratios["median"]
    return {
        "trials": TRIALS,
        "epochs": epochs,
        "repeats": repeats,
        "launchers": {
            name: {
                "wall_s": walls[name],
                "trial_wall_s_median": statistics.median(
                    t for s in runs for t in s["trial_wall_s"]
                ),
                "completed": min(s["completed"] for s in runs),
                "sweeps": runs,
            }
            for name, runs in sweeps.items()
        },
        "ratio": ratio,
        "ratio_spread": ratios,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }


def read_trials(log_dir: Path) -> dict[str, Any]:
    """Per-trial status and wall time from the sweep's summary.csv."""
    found = sorted(log_dir.glob("*/multiruns/*/summary.csv"))
    if not found:
        raise BenchError(f"the sweep in {log_dir} wrote no summary.csv")
    with found[-1].open() as file:
        rows = list(csv.DictReader(file))
    return {
        "completed": sum(row.get("status") == "completed" for row in rows),
        "trial_wall_s": [float(row["wall_time_s"]) for row in rows if row.get("wall_time_s")],
    }


def table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"sweep: {result['trials']} MLP trials (lr grid), {result['epochs']} epochs each "
        f"(median of {result['repeats']})",
    )
    for column in ("launcher", "wall s (median)", "min", "max", "trial s (median)", "completed"):
        table.add_column(column, justify="left" if column == "launcher" else "right")
    for name, launcher in result["launchers"].items():
        wall = launcher["wall_s"]
        table.add_row(
            name,
            f"{wall['median']:.2f}",
            f"{wall['min']:.2f}",
            f"{wall['max']:.2f}",
            f"{launcher['trial_wall_s_median']:.2f}",
            f"{launcher['completed']}/{result['trials']}",
        )
    ratios = result["ratio_spread"]
    table.add_row(
        f"parallel / serial (target <= {result['target_ratio']:.2f}x): {mark(result['meets_target'])}",
        f"{ratios['median']:.2f}x",
        f"{ratios['min']:.2f}x",
        f"{ratios['max']:.2f}x",
        end_section=True,
    )
    return table
