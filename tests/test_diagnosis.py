"""The methodology's cases, produced by real runs: each scenario gets its verdict, report and curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from practicum.config.goal import Goal
from practicum.methodology.cases import RunFacts
from practicum.methodology.diagnosis import (
    best_epoch_early,
    decide_verdict,
    diagnose,
    overfitting,
    still_improving,
)
from practicum.run import one_run as run_module

from conftest import train

GOAL = Goal("val/acc", "max", 0.98)
NO_BASELINE = "diagnosis.baseline_model=null"


def _history(
    train_loss: list[float], val_loss: list[float] | None = None
) -> dict[int, dict[str, float]]:
    val_loss = val_loss or train_loss
    return {
        e: {"train/loss": t, "val/loss": v}
        for e, (t, v) in enumerate(zip(train_loss, val_loss, strict=True))
    }


def _facts(metrics, history=None, **extra) -> RunFacts:
    return RunFacts(metrics=metrics, goal=extra.pop("goal", GOAL), history=history or {}, **extra)


def test_verdict_rules():
    metrics = {"train/acc": 0.99, "val/acc": 0.99, "test/acc": 0.99, "train/loss": 0.1}
    assert decide_verdict(_facts(metrics, _history([1.0, 0.5]))) == "goal_met"
    assert decide_verdict(_facts({**metrics, "test/acc": 0.90})) == "distribution_mismatch"
    assert decide_verdict(_facts({**metrics, "val/acc": 0.90})) == "high_val_error"
    assert (
        decide_verdict(_facts({**metrics, "val/acc": 0.90, "train/acc": 0.91}))
        == "high_train_error"
    )
    assert decide_verdict(_facts(metrics, _history([1.0, float("nan")]))) == "diverged"
    loss_goal = Goal("val/loss", "min", 0.2)
    assert (
        decide_verdict(_facts({"train/loss": 0.1, "val/loss": 0.5}, goal=loss_goal))
        == "high_val_error"
    )


def test_curve_evidence():
    assert still_improving(_history([1.0, 0.8, 0.6, 0.5]))
    assert not still_improving(_history([1.0, 0.5, 0.5, 0.5]))
    assert overfitting(_history([1.0, 0.5, 0.3, 0.2, 0.1], [1.0, 0.6, 0.7, 0.8, 0.9]))
    assert not overfitting(_history([1.0, 0.5, 0.3], [1.0, 0.6, 0.5]))
    assert best_epoch_early(0, 20) and not best_epoch_early(5, 20) and not best_epoch_early(0, 5)


def test_evidence_reorders_the_advice():
    metrics = {"train/acc": 0.5, "val/acc": 0.5, "test/acc": 0.5}
    changes = {
        "epochs": [["trainer.max_epochs=8"]],
        "range_test": [["tune=lr"]],
        "checks": [["debug=checks"]],
    }
    rising = diagnose(
        _facts(
            metrics, _history([2.0, 1.5, 1.2, 1.0]), best=3, lr=1e-3, max_epochs=4, changes=changes
        )
    )
    assert rising.verdict == "high_train_error" and rising.case == "too_few_steps"
    assert (
        rising.next_steps[0].startswith("Train longer") and "(now 4 epochs)" in rising.next_steps[0]
    )
    flat = diagnose(
        _facts(
            metrics, _history([2.0, 1.0, 1.0, 1.0]), best=3, lr=1e-3, max_epochs=4, changes=changes
        )
    )
    assert flat.case == "underfitting" and flat.next_steps[0].startswith("Find the learning rate")


def _verdict(tmp_path: Path, overrides: list[str]) -> tuple[dict, Path]:
    _, summary, run_dir = train(tmp_path, overrides)
    report = (run_dir / "report.md").read_text()
    assert f"`{summary['verdict']}`" in report and "## What to try next" in report
    assert (run_dir / "curves.png").stat().st_size > 10_000
    assert summary["diagnosis"]["next_steps"] and summary["diagnosis"]["evidence"]
    return summary, run_dir


def test_healthy_run_meets_the_goal_with_a_linear_baseline_beside_it(tmp_path: Path):
    summary, run_dir = _verdict(tmp_path, [])
    assert summary["verdict"] == "goal_met" and summary["goal_met"]
    baseline = summary["baseline"]["val/acc"]
    assert 0.85 < baseline < summary["metrics"]["val/acc"], (
        "the linear model is good but worse than the CNN"
    )
    assert "A linear model on the same split reaches val/acc" in (run_dir / "report.md").read_text()


def test_stricter_goal_changes_verdict_and_advice(tmp_path: Path):
    summary, _ = _verdict(tmp_path, ["goal.target=0.999", NO_BASELINE])
    assert summary["verdict"] in ("high_train_error", "high_val_error")
    assert not summary["goal_met"]
    assert not summary["diagnosis"]["next_steps"][0].startswith("Confirm")


def test_a_loss_that_hardly_moves_is_a_learning_rate_too_low(tmp_path: Path):
    summary, _ = _verdict(
        tmp_path, ["model=linear", "optimizer.lr=1e-4", "trainer.max_epochs=3", NO_BASELINE]
    )
    assert summary["verdict"] == "high_train_error"
    assert summary["diagnosis"]["case"] == "lr_too_low"
    assert summary["metrics"]["train/acc"] < 0.9
    first = summary["diagnosis"]["remedies"][0]
    assert first["key"] == "raise_lr" and all(
        float(change[0].split("=")[1]) > 1e-4 for change in first["changes"]
    )


def test_big_unregularized_model_on_tiny_data_is_high_validation_error(tmp_path: Path):
    overrides = [
        "model=mlp",
        "model.net.hidden_units=256",
        "model.net.dropout=0",
        "model.net.batch_norm=false",
        "data.train_subset=30",
        "trainer.max_epochs=60",
        "callbacks.early_stopping.patience=60",
        NO_BASELINE,
    ]
    summary, _ = _verdict(tmp_path, overrides)
    assert summary["verdict"] == "high_val_error"
    assert summary["metrics"]["train/acc"] >= 0.98 > summary["metrics"]["val/acc"]
    assert (
        "more training data" in summary["diagnosis"]["next_steps"][0]
        or "Regularize" in summary["diagnosis"]["next_steps"][0]
    )


def test_shifted_test_split_is_distribution_mismatch(tmp_path: Path, monkeypatch):
    real_build = run_module.build_datamodule

    def build_with_shifted_test(cfg):
        datamodule = real_build(cfg)
        x, y = datamodule.splits["test"]
        datamodule.splits["test"] = (
            torch.flip(x, dims=[-1]) + 1.5,
            y,
        )  # mirrored and brighter digits
        return datamodule

    monkeypatch.setattr(run_module, "build_datamodule", build_with_shifted_test)
    summary, _ = _verdict(tmp_path, [NO_BASELINE])
    assert summary["verdict"] == "distribution_mismatch"
    assert summary["metrics"]["val/acc"] >= 0.98 > summary["metrics"]["test/acc"]


def test_huge_learning_rate_diverges_without_crashing_the_report(tmp_path: Path):
    summary, run_dir = _verdict(
        tmp_path, ["optimizer=sgd", "optimizer.lr=1e6", "trainer.max_epochs=5", NO_BASELINE]
    )
    assert summary["verdict"] == "diverged" and summary["status"] == "diverged"
    assert summary["epochs_trained"] < 5, "training stops at the first non-finite epoch loss"
    assert "Lower the learning rate" in summary["diagnosis"]["next_steps"][0]
    json.loads((run_dir / "summary.json").read_text())  # valid JSON despite NaN/inf values


def test_stop_when_met_ends_training_at_the_target(tmp_path: Path):
    _, summary, _ = train(tmp_path, ["goal.stop_when_met=true", "goal.target=0.9", NO_BASELINE])
    assert summary["goal_met"]
    assert summary["epochs_trained"] == summary["best_epoch"] + 1 < 10


@pytest.mark.parametrize("logger", ["tensorboard"])
def test_curves_reach_the_logger(tmp_path: Path, logger: str):
    _, _, run_dir = train(tmp_path, [f"logger={logger}", "trainer.max_epochs=2", NO_BASELINE])
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and max(e.stat().st_size for e in events) > 20_000, (
        "the curves image is in the event file"
    )


def test_a_val_test_gap_within_sampling_noise_is_not_a_mismatch():
    metrics = {"train/acc": 0.99, "val/acc": 0.985, "test/acc": 0.970}
    small = {"train": 1000, "val": 270, "test": 270}
    large = {"train": 100_000, "val": 20_000, "test": 20_000}
    within = diagnose(_facts(metrics, sizes=small))
    assert within.verdict == "goal_met"  # val meets; test misses by less than the noise
    assert any("within their sampling noise" in line for line in within.evidence)
    assert decide_verdict(_facts(metrics, sizes=large)) == "distribution_mismatch"
    # a loss goal gets its noise from per-example values
    loss_goal = Goal("val/loss", "min", 0.3)
    losses = {"train/loss": 0.1, "val/loss": 0.25, "test/loss": 0.398}
    noisy = _facts(losses, goal=loss_goal, noise={"val": 0.07, "test": 0.07})
    assert decide_verdict(noisy) == "goal_met"
    precise = _facts(losses, goal=loss_goal, noise={"val": 0.01, "test": 0.01})
    assert decide_verdict(precise) == "distribution_mismatch"
