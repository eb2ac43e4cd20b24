"""Real training runs on real (small) data: every model, optimizer and scheduler; the default baseline."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from conftest import run_process, train

FAST = ["debug=fast"]


def _assert_summary_is_real(summary: dict, run_dir: Path) -> None:
    assert summary["status"] == "completed"
    for split in ("train", "val", "test"):
        for name in ("acc", "f1", "loss"):
            value = summary["metrics"][f"{split}/{name}"]
            assert math.isfinite(value)
    assert 0.0 <= summary["metrics"]["val/acc"] <= 1.0
    assert summary["wall_time_s"] > 0
    assert set(summary["goal"]) == {"metric", "mode", "target"}
    assert (run_dir / "metrics.csv").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert Path(summary["best_checkpoint"]).is_file()


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=linear"],
        ["model=linear", "model.loss=hinge", "optimizer=sgd"],
        ["model=mlp"],
        ["model=mlp", "model.net.batch_norm=false", "model.net.depth=3"],
        [
            "model=cnn",
            "model.net.padding=0",
            "model.net.kernel_size=3",
            "model.net.batch_norm=false",
        ],
        ["data=wine", "model=mlp"],
        ["data=breast_cancer", "model=linear"],
    ],
    ids=lambda o: " ".join(o),
)
def test_every_model_trains(tmp_path: Path, overrides: list[str]):
    value, summary, run_dir = train(tmp_path, [*FAST, *overrides])
    _assert_summary_is_real(summary, run_dir)
    assert value == pytest.approx(summary["metrics"]["val/acc"])


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "sgd"])
@pytest.mark.parametrize(
    "scheduler", ["none", "step", "exponential", "cosine", "plateau", "warmup_cosine"]
)
def test_optimizer_and_scheduler_train(tmp_path: Path, optimizer: str, scheduler: str):
    _, summary, run_dir = train(
        tmp_path,
        [f"optimizer={optimizer}", f"scheduler={scheduler}", "model=mlp", "trainer.max_epochs=2"],
    )
    assert summary["status"] == "completed" and summary["epochs_trained"] == 2
    with (run_dir / "metrics.csv").open() as handle:
        lrs = [
            float(row[k])
            for row in csv.DictReader(handle)
            for k in row
            if k.startswith("lr-") and row[k]
        ]
    assert lrs and all(lr > 0 for lr in lrs), "the learning-rate monitor logged the schedule"
    # a 2-epoch MLP on digits is far above chance (0.1) whatever the optimizer
    assert summary["metrics"]["val/acc"] > 0.5


@pytest.mark.e2e
def test_default_run_reaches_the_goal(tmp_path: Path):
    """`python train.py` as a user runs it: a process of its own, every default."""
    result = run_process("train.py", f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    value = summary["metrics"]["val/acc"]
    _assert_summary_is_real(summary, run_dir)
    assert summary["goal_met"] is True
    assert value >= 0.98 and summary["metrics"]["test/acc"] > 0.95
    assert 0 <= summary["best_epoch"] < summary["epochs_trained"] <= 30
    assert set(summary) >= {
        "goal",
        "goal_met",
        "verdict",
        "metrics",
        "best_epoch",
        "wall_time_s",
        "status",
    }


def test_summary_reports_a_missed_goal(tmp_path: Path):
    _, summary, _ = train(tmp_path, ["model=linear", "trainer.max_epochs=1", "goal.target=0.999"])
    assert summary["goal_met"] is False
    assert summary["metrics"]["val/acc"] < 0.999


def test_deterministic_trainer_repeats_exactly(tmp_path: Path):
    runs = [
        train(tmp_path / str(i), ["trainer=deterministic", "trainer.max_epochs=3"])[1]
        for i in range(2)
    ]
    assert runs[0]["metrics"] == runs[1]["metrics"]


def test_seed_changes_the_result(tmp_path: Path):
    a = train(tmp_path / "a", ["seed=1", "trainer.max_epochs=2"])[1]["metrics"]
    b = train(tmp_path / "b", ["seed=2", "trainer.max_epochs=2"])[1]["metrics"]
    assert a["train/loss"] != b["train/loss"]


def test_early_stopping_stops_on_the_goal_metric(tmp_path: Path):
    _, summary, _ = train(
        tmp_path,
        ["callbacks.early_stopping.patience=1", "trainer.max_epochs=30", "optimizer.lr=1e-1"],
    )
    assert summary["epochs_trained"] < 30


@pytest.mark.slow
def test_ema_callback_and_compile_switch_train(tmp_path: Path):
    """`callbacks=ema` averages the weights; `compile=true` compiles the net in place."""
    value, summary, run_dir = train(
        tmp_path,
        [
            "callbacks=ema",
            "callbacks.progress_bar=null",
            "model=mlp",
            "compile=true",
            "trainer.max_epochs=3",
            "diagnosis.baseline_model=null",
        ],
    )
    _assert_summary_is_real(summary, run_dir)
    assert summary["metrics"]["val/acc"] > 0.8
    import torch

    checkpoint = torch.load(summary["best_checkpoint"], weights_only=True)
    assert any("EMAWeightAveraging" in key for key in checkpoint["callbacks"])
    assert not any("_orig_mod" in key for key in checkpoint["state_dict"])  # loads uncompiled too


def test_tensorboard_and_wandb_get_the_outcome(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    overrides = ["logger=many", "trainer.max_epochs=2", "diagnosis.baseline_model=null"]
    _, summary, run_dir = train(tmp_path, overrides)
    import wandb
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    wandb.finish()
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert "report/text_summary" in events.Tags()["tensors"]
    assert "curves" in events.Tags()["images"]
    (report,) = events.Tensors("report/text_summary")
    assert f"`{summary['verdict']}`" in report.tensor_proto.string_val[0].decode()
    # W&B's run summary holds the outcome and the best checkpoint's metrics (offline run file)
    (record_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    record = record_file.read_bytes()
    for text in ("goal_met", summary["verdict"], "best/test/acc", "best_epoch"):
        assert text.encode() in record, text
