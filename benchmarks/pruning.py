"""Section `pruning`: random search with and without pruning, on three models.

For the digits CNN, the wine MLP and the GRU on digit rows: `search=random` with no pruner, with
ASHA (`search.pruner=asha`, min resource 1 epoch, reduction factor 3) and with the median pruner,
16 trials of `trainer.max_epochs=30` each (--quick: 15 epochs, one seed), early stopping off in
every arm, 2 trials at once (`hydra/launcher=local_parallel`), over search seeds 0, 1, 2. A seed
draws the same 16 points in every arm, so the arms differ only in what they stop. Measured per
sweep: the best val objective, the trial-epochs (epochs trained by all trials), the wall time and
the share of slot time no trial ran (from the study's trial times, summary.md's figure).

Targets: the best objective within noise of no pruning (twice the standard error of the best
trial's val metric, which each run measures), ASHA at <= 40% of the trial-epochs, idle <= 10%.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

from rich.table import Table

from common import BenchError, Settings, mark, python_script, require_success, run_process

MODELS = {
    "digits CNN": ["model=cnn"],
    "wine MLP": ["data=wine", "model=mlp"],
    "GRU on digit rows": ["model=gru"],
}
ARMS = {"random": "none", "random + ASHA": "asha", "random + median": "median"}
TRIALS = 16
TARGET_EPOCHS = 0.40
TARGET_IDLE = 0.10


def sweep_command(
    log_dir: Path, model: list[str], pruner: str, epochs: int, seed: int
) -> list[str]:
    return python_script(
        "train.py",
        "-m",
        "search=random",
        *model,
        f"search.n_trials={TRIALS}",
        f"search.seed={seed}",
        f"search.pruner={pruner}",
        "search.min_resource=1",
        "search.reduction_factor=3",
        f"trainer.max_epochs={epochs}",
        "callbacks.early_stopping=null",
        "diagnosis.baseline_model=null",
        "hydra/launcher=local_parallel",
        "hydra.launcher.n_jobs=2",
        f"paths.log_dir={log_dir}",
    )


def measure(log_dir: Path) -> dict[str, Any]:
    """Best val objective (and its noise), trial-epochs, statuses and idle share of one sweep."""
    from practicum.search.sweep import read_sweep
    from practicum.search.sweep_study import schedule

    found = sorted(log_dir.glob("*/multiruns/*/summary.md"))
    if not found:
        raise BenchError(f"the sweep in {log_dir} wrote no summary")
    sweep = read_sweep(found[-1].parent, None, "python train.py")
    timing = schedule(sweep.dir, sweep.trials)
    best = sweep.best
    return {
        "best": best.objective if best else None,
        "best_se": ((best.get("standard_errors") or {}).get("val")) if best else None,
        "trial_epochs": timing.trial_epochs,
        "idle": timing.idle,
        "pruned": sweep.count("pruned"),
        "completed": sweep.count("completed"),
    }


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    epochs = settings.size(30, 15)
    seeds = list(range(settings.count(3, 1)))
    sweeps: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as tmp:
        for model, overrides in MODELS.items():
            sweeps[model] = {arm: [] for arm in ARMS}
            for seed in seeds:
                for arm, pruner in ARMS.items():
                    log_dir = Path(tmp) / f"{model}-{arm}-{seed}".replace(" ", "_")
                    command = sweep_command(log_dir, overrides, pruner, epochs, seed)
                    ran = require_success(run_process(command, timeout=3600), f"{model} {arm}")
                    result = {"seed": seed, "wall_s": round(ran.wall_s, 1), **measure(log_dir)}
                    sweeps[model][arm].append(result)
                    log(f"{model}, {arm}, seed {seed}: {result}")
    return {
        "trials": TRIALS,
        "epochs": epochs,
        "seeds": seeds,
        "models": {model: summarize(arms, epochs) for model, arms in sweeps.items()},
    }


def summarize(arms: dict[str, list[dict[str, Any]]], epochs: int) -> dict[str, Any]:
    """Per arm: means over seeds, the share of no-pruning's trial-epochs, and the targets."""
    base = arms["random"]
    rows = {}
    for arm, runs in arms.items():
        share = statistics.mean(
            r["trial_epochs"] / b["trial_epochs"] for r, b in zip(runs, base, strict=True)
        )
        gaps = [
            abs(r["best"] - b["best"]) <= 2 * max(r["best_se"] or 0, b["best_se"] or 0)
            for r, b in zip(runs, base, strict=True)
            if r["best"] is not None and b["best"] is not None
        ]
        idle = [r["idle"] for r in runs if r["idle"] is not None]
        rows[arm] = {
            "best": statistics.mean(r["best"] for r in runs if r["best"] is not None),
            "best_se": statistics.mean(r["best_se"] or 0 for r in runs),
            "trial_epochs": statistics.mean(r["trial_epochs"] for r in runs),
            "epochs_share": share,
            "wall_s": statistics.mean(r["wall_s"] for r in runs),
            "idle": max(idle) if idle else None,
            "pruned": statistics.mean(r["pruned"] for r in runs),
            "within_noise": all(gaps) if gaps else None,
            "meets_epochs": None if arm == "random" else share <= TARGET_EPOCHS,
            "meets_idle": bool(idle) and max(idle) <= TARGET_IDLE,
            "sweeps": runs,
        }
    return rows


def table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"pruning: random search, {result['trials']} trials x {result['epochs']} epochs, "
        f"2 at a time, early stopping off (mean over seeds {result['seeds']})",
    )
    columns = ("model", "arm", "best val", "± 2 SE", "within noise", "trial-epochs", "share")
    for column in (*columns, "<= 40%", "pruned", "wall s", "idle (max)", "<= 10%"):
        table.add_column(column, justify="left" if column in ("model", "arm") else "right")
    for model, arms in result["models"].items():
        for i, (arm, row) in enumerate(arms.items()):
            table.add_row(
                model if i == 0 else "",
                arm,
                f"{row['best']:.4f}",
                f"{2 * row['best_se']:.4f}",
                "-" if arm == "random" else mark(row["within_noise"]),
                f"{row['trial_epochs']:.0f}",
                f"{row['epochs_share']:.0%}",
                mark(row["meets_epochs"]),
                f"{row['pruned']:.1f}",
                f"{row['wall_s']:.0f}",
                "-" if row["idle"] is None else f"{row['idle']:.1%}",
                mark(row["meets_idle"]),
                end_section=i == len(arms) - 1,
            )
    return table
