"""Sweeps through the real CLI: Optuna samplers, launchers, failures, repeats and resumable studies."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from conftest import run_cli

QUICK = ["trainer.max_epochs=1", "diagnosis.baseline_model=null", "callbacks.progress_bar=null"]


def sweep(tmp_path: Path, *args: str) -> list[tuple[dict, dict]]:
    """Run `python train.py -m ...`; return (overrides, summary.json) per job, in job order."""
    result = run_cli("train.py", "-m", *args, *QUICK, f"paths.log_dir={tmp_path}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "train" / "multiruns").iterdir()
    jobs = sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return [_job(job) for job in jobs]


def _job(job: Path) -> tuple[dict, dict]:
    overrides = dict(
        o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
    )
    return overrides, json.loads((job / "summary.json").read_text())


@pytest.mark.parametrize(
    "search",
    [
        "random",
        pytest.param("quasi_random", marks=pytest.mark.slow),
        pytest.param("tpe", marks=pytest.mark.slow),
    ],
)
def test_samplers_search_the_declared_space(tmp_path: Path, search: str):
    jobs = sweep(tmp_path, f"search={search}", "search.n_trials=3", "model=mlp")
    assert len(jobs) == 3
    lrs = [float(overrides["optimizer.lr"]) for overrides, _ in jobs]
    assert len(set(lrs)) == 3 and all(1e-4 <= lr <= 3e-2 for lr in lrs), (
        "log-uniform lr from conf/search/space/mlp.yaml"
    )
    assert {int(overrides["model.net.hidden_units"]) for overrides, _ in jobs} <= {32, 64, 128, 256}
    for _, summary in jobs:
        assert summary["status"] == "completed" and 0 < summary["objective"] <= 1


def test_grid_search_takes_grid_points(tmp_path: Path):
    jobs = sweep(tmp_path, "search=grid", "search.n_trials=4", "model=linear")
    points = {(float(o["optimizer.lr"]), float(o["optimizer.weight_decay"])) for o, _ in jobs}
    assert len(points) == 4
    assert all(
        lr in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2) and wd in (0.0, 1e-4, 1e-3) for lr, wd in points
    )


@pytest.mark.slow
def test_local_parallel_caps_threads_per_job(tmp_path: Path):
    jobs = sweep(
        tmp_path,
        "search=random",
        "search.n_trials=2",
        "hydra/launcher=local_parallel",
        "model=linear",
    )
    assert len(jobs) == 2 and all(s["status"] == "completed" for _, s in jobs)
    import os

    expected = max(1, (os.cpu_count() or 1) // 2)
    for _, summary in jobs:
        hparams = yaml.safe_load((Path(summary["run_dir"]) / "hparams.yaml").read_text())
        assert hparams["num_threads"] == expected


@pytest.mark.slow
def test_submitit_local_launcher(tmp_path: Path):
    jobs = sweep(
        tmp_path, "hydra/launcher=submitit_local", "model=linear", "optimizer.lr=1e-3,1e-2"
    )
    assert [float(o["optimizer.lr"]) for o, _ in jobs] == [1e-3, 1e-2]
    assert all(s["status"] == "completed" for _, s in jobs)


@pytest.mark.slow
def test_a_failing_and_a_diverging_trial_do_not_stop_the_sweep(tmp_path: Path):
    jobs = sweep(
        tmp_path,
        "model.net.kernel_size=3,9",
        "model.net.padding=0",
        "optimizer=sgd",
        "optimizer.lr=1e-2,1e6",
    )
    by_point = {(int(o["model.net.kernel_size"]), float(o["optimizer.lr"])): s for o, s in jobs}
    assert by_point[(3, 1e-2)]["status"] == "completed"
    assert by_point[(3, 1e6)]["status"] == "diverged" and by_point[(3, 1e6)]["objective"] is None
    for lr in (1e-2, 1e6):
        refused = by_point[(9, lr)]
        assert refused["status"] == "refused" and "does not fit inputs" in refused["error"]


@pytest.mark.slow
def test_sqlite_study_resumes_with_more_trials(tmp_path: Path):
    optuna = pytest.importorskip("optuna")
    storage = f"sqlite:///{tmp_path}/studies/study.db"
    args = [
        "search=random",
        "search.n_trials=2",
        f"search.storage={storage}",
        "search.study_name=resume",
        "model=linear",
    ]
    sweep(tmp_path / "first", *args)
    sweep(
        tmp_path / "second", *args, "search.seed=1"
    )  # a new seed, or the sampler repeats its points
    study = optuna.load_study(study_name="resume", storage=storage)
    assert len(study.trials) == 4
    assert len({t.params["optimizer.lr"] for t in study.trials}) == 4, (
        "the second sweep continued the study"
    )


def test_repeats_average_over_seeds(tmp_path: Path):
    jobs = sweep(tmp_path, "search=random", "search.n_trials=1", "search.repeats=2", "model=linear")
    ((_, summary),) = jobs
    assert [run["seed"] for run in summary["seeds"]] == [42, 43]
    values = [run["objective"] for run in summary["seeds"]]
    assert summary["objective"] == pytest.approx(sum(values) / 2)
    assert math.isfinite(summary["objective_std"])
    for run in summary["seeds"]:
        assert (Path(run["run_dir"]) / "summary.json").is_file()


@pytest.mark.slow
def test_wandb_gets_one_run_per_trial_grouped_by_sweep(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    sweep(tmp_path, "logger=wandb", "model=linear", "optimizer.lr=1e-3,1e-2")
    (sweep_dir,) = (tmp_path / "train" / "multiruns").iterdir()
    group = f"train-{sweep_dir.name}".encode()
    for job in ("0", "1"):
        # each trial's own offline run; its run record names the sweep's group and the trial
        (run_file,) = (sweep_dir / job / "wandb").glob("offline-run-*/run-*.wandb")
        record = run_file.read_bytes()
        assert group in record and f"train-linear-digits-trial{job}".encode() in record
