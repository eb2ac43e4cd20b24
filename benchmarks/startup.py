"""Section `startup`: time to first result. `python train.py` (defaults, start to exit, goal met)
against `python -c "import lightning.pytorch"`, alternating in one run, as a ratio; and the wall
times of `--help` and `--cfg job`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from rich.table import Table

from common import BenchError, Settings, mark, python_script, require_success, run_process, spread

TARGETS_S = {"train": 12.0, "help": 1.5}
# `python train.py` wall / `python -c "import lightning.pytorch"` wall
TARGET_RATIO = 1.6
IMPORT_LIGHTNING = ("-c", "import lightning.pytorch")


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    light_repeats = settings.count(5, 3)
    commands = {
        "help": python_script("train.py", "--help"),
        "cfg_job": python_script("train.py", "--cfg", "job"),
    }
    light: dict[str, list] = {name: [] for name in commands}
    for i in range(light_repeats):
        for name, args in commands.items():
            light[name].append(require_success(run_process(args), f"train.py {name}"))
        log(f"startup {i + 1}/{light_repeats}: --help and --cfg job")

    trains, import_runs = [], []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for i in range(settings.count(3, 1)):
            # the two sides alternate, and swap who goes first each round
            first_import = i % 2 == 1
            if first_import:
                import_runs.append(import_lightning())
            trains.append(default_train_run(Path(tmp) / str(i)))
            if not first_import:
                import_runs.append(import_lightning())
            log(
                f"startup {i + 1}: python train.py {trains[-1]['wall_s']:.1f} s (goal met: "
                f"{trains[-1]['goal_met']}), import lightning.pytorch {import_runs[-1].wall_s:.1f} s"
            )
    ratios = spread([t["wall_s"] / r.wall_s for t, r in zip(trains, import_runs, strict=True)])

    result: dict[str, Any] = {
        "train": {
            **spread([t["wall_s"] for t in trains]),
            "goal_met": all(t["goal_met"] for t in trains),
            "runs_detail": trains,
        },
        "help": spread([r.wall_s for r in light["help"]]),
        "cfg_job": spread([r.wall_s for r in light["cfg_job"]]),
        "import_lightning": spread([r.wall_s for r in import_runs]),
        "targets_s": TARGETS_S,
        "ratio": ratios,
        "target_ratio": TARGET_RATIO,
    }
    result["meets_target_ratio"] = ratios["median"] <= TARGET_RATIO and result["train"]["goal_met"]
    result["train"]["meets_target"] = (
        result["train"]["median"] <= TARGETS_S["train"] and result["train"]["goal_met"]
    )
    result["help"]["meets_target"] = result["help"]["median"] <= TARGETS_S["help"]
    return result


def import_lightning():
    return require_success(run_process(python_script(*IMPORT_LIGHTNING)), "import lightning")


def default_train_run(log_dir: Path) -> dict[str, Any]:
    """`python train.py` with every default, into its own log dir; wall time to exit, and its summary."""
    run = require_success(
        run_process(python_script("train.py", f"paths.log_dir={log_dir}")), "python train.py"
    )
    summaries = sorted(log_dir.glob("*/runs/*/summary.json"))
    if not summaries:
        raise BenchError(f"python train.py wrote no summary.json:\n{run.tail()}")
    summary = json.loads(summaries[-1].read_text())
    return {
        "wall_s": run.wall_s,
        "cpu_s": run.cpu_s,
        "peak_rss_mb": run.peak_rss_mb,
        "goal_met": bool(summary.get("goal_met")),
        "val_acc": (summary.get("metrics") or {}).get("val/acc"),
        "run_wall_time_s": summary.get("wall_time_s"),
        "epochs_trained": summary.get("epochs_trained"),
    }


def table(result: dict[str, Any]) -> Table:
    table = Table(
        title="startup: time to first result, process start to exit (fresh processes; "
        "train.py and the import alternate)",
        caption="Ratio: each round's `python train.py` over the `import lightning.pytorch` next "
        "to it; median, min and max over the rounds",
    )
    for column in ("command", "median s", "min", "max", "runs", "target", "met", "notes"):
        table.add_column(column, justify="left" if column in ("command", "notes") else "right")
    train = result["train"]
    detail = train["runs_detail"][0]
    rows = [
        (
            "python train.py",
            train,
            TARGETS_S["train"],
            f"goal met: {train['goal_met']}; {detail['epochs_trained']} epochs; "
            f"in-run {detail['run_wall_time_s']} s",
        ),
        ("python train.py --help", result["help"], TARGETS_S["help"], ""),
        ("python train.py --cfg job", result["cfg_job"], None, ""),
        ("python -c 'import lightning.pytorch'", result["import_lightning"], None, "for reference"),
    ]
    for command, numbers, target, notes in rows:
        table.add_row(
            command,
            f"{numbers['median']:.2f}",
            f"{numbers['min']:.2f}",
            f"{numbers['max']:.2f}",
            str(len(numbers["runs"])),
            f"<= {target}" if target else "",
            mark(numbers.get("meets_target")),
            notes,
        )
    table.add_section()
    ratio = result["ratio"]
    table.add_row(
        "train.py / import lightning.pytorch",
        f"{ratio['median']:.2f}x",
        f"{ratio['min']:.2f}x",
        f"{ratio['max']:.2f}x",
        str(len(ratio["runs"])),
        f"<= {result['target_ratio']}",
        mark(result["meets_target_ratio"]),
        "",
    )
    return table
