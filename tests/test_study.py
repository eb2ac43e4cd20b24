"""experiment=grid_vs_random: grid, random and quasi-random search at equal budgets, end to end."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from practicum.errors import UserError

from conftest import compose_train

TINY = [
    "experiment=grid_vs_random",
    "model=mlp",
    "study.n_trials=4",
    "study.study_seeds=[0]",
    "study.max_epochs=1",
]


@pytest.mark.slow
def test_grid_vs_random_tiny_study_writes_table_plot_and_rows(tmp_path: Path) -> None:
    from practicum.cli import run_train_config
    from practicum.config.validate import validate

    cfg = compose_train(tmp_path, TINY)
    validate(cfg)
    best = run_train_config(cfg)
    run_dir = Path(cfg.paths.output_dir)

    for suffix in ("csv", "json", "md", "png"):
        assert (run_dir / f"grid_vs_random.{suffix}").stat().st_size > 0
    with open(run_dir / "grid_vs_random.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 4  # 3 methods x 1 study seed x 4 trials

    lrs = {m: {float(r["lr"]) for r in rows if r["method"] == m} for m in ("grid", "random")}
    lrs["quasi_random"] = {float(r["lr"]) for r in rows if r["method"] == "quasi_random"}
    # a 2x2 grid spends 4 trials on 2 learning rates: the ends of the log range
    assert sorted(lrs["grid"]) == pytest.approx([1e-5, 1e-1])
    assert len(lrs["random"]) == 4 and len(lrs["quasi_random"]) == 4
    assert all(1e-5 <= lr <= 1e-1 for values in lrs.values() for lr in values)

    objectives = [float(r["val/acc"]) for r in rows]
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in objectives)
    assert all(r["status"] == "completed" for r in rows)
    # each trial is a full run below the study, without its checkpoints
    trial_dir = run_dir / "grid" / "seed_0" / "trial_1"
    assert (trial_dir / "summary.json").exists() and not (trial_dir / "checkpoints").exists()

    content = json.loads((run_dir / "grid_vs_random.json").read_text())
    summary = {s["method"]: s for s in content["summary"]}
    assert set(summary) == {"grid", "random", "quasi_random"}
    assert summary["grid"]["distinct_values"]["lr"] == 2
    assert summary["random"]["distinct_values"]["lr"] == 4
    assert best == pytest.approx(max(objectives))
    table = (run_dir / "grid_vs_random.md").read_text()
    assert table.count("\n| ") == 1 + 3  # header and one line per method


def test_grid_needs_a_full_grid(tmp_path: Path) -> None:
    from practicum.run.one_run import train_run
    from practicum.search.study import run_study

    cfg = compose_train(tmp_path, [*TINY, "study.n_trials=5"])
    with pytest.raises(UserError, match="not a full grid"):
        run_study(cfg, train_run)
