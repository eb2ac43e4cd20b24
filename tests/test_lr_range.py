"""LR range test: a sane suggestion on digits that actually trains to the goal, early stop, plot, config."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from practicum.config import TuneConfig, settings
from practicum.errors import UserError
from practicum.methodology.lr_range import lr_range_test, suggest_lr
from practicum.run.build import build_datamodule, build_task

from conftest import CONF_DIR, compose_train, train


def build(tmp_path: Path, overrides: list[str] = ()):
    """The task and data the run flow would build (same seed), before any training."""
    cfg = compose_train(tmp_path, list(overrides))
    pl.seed_everything(cfg.seed, verbose=False)
    return build_datamodule(cfg), build_task(cfg)


@pytest.fixture(scope="module")
def default_sweep(tmp_path_factory):
    """The default CNN on digits, a snapshot of its weights, and its range test with default settings."""
    data, task = build(tmp_path_factory.mktemp("cnn"))
    before = {name: t.clone() for name, t in task.state_dict().items()}
    return task, data, before, lr_range_test(task, data)


def test_default_cnn_suggestion_is_sane(default_sweep):
    _, _, _, result = default_sweep
    assert len(result.lrs) == len(result.losses) == 100  # Adam with batch norm survives lr=1
    assert all(math.isfinite(loss) for loss in result.losses)
    assert result.lrs[0] == pytest.approx(1e-6) and result.lrs[-1] == pytest.approx(1.0)
    assert np.all(np.diff(np.log10(result.lrs)) > 0)
    assert 1e-4 <= result.suggestion <= 1e-1
    # the rule: the more conservative of "a decade below the minimum" and "steepest descent"
    assert result.suggestion <= result.min_loss_lr / 10 * (1 + 1e-9)
    assert result.suggestion == min(result.min_loss_lr / 10, result.steepest_lr)
    # at the suggestion the loss is well on its way down from where it started
    at = result.lrs.index(result.steepest_lr)
    assert result.losses[at] < result.losses[0] - 0.3


def test_range_test_leaves_the_task_unchanged(default_sweep):
    task, _, before, _ = default_sweep
    after = task.state_dict()
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name  # weights and batch-norm statistics alike


def test_range_test_is_reproducible(default_sweep):
    task, data, _, _ = default_sweep
    first, second = (lr_range_test(task, data, steps=20, seed=3) for _ in range(2))
    assert first.losses == second.losses and first.suggestion == second.suggestion


def test_stops_early_when_the_loss_diverges(tmp_path):
    data, task = build(tmp_path, ["model=linear", "optimizer=sgd"])
    result = lr_range_test(task, data, min_lr=1e-3, max_lr=1e4, steps=70)
    assert result.stopped_early
    assert len(result.lrs) < 70
    assert all(math.isfinite(loss) for loss in result.losses)
    assert result.losses[-1] > 4 * min(result.losses)  # the step that tripped the 4x rule
    assert result.suggestion < result.lrs[-1]


def test_suggest_lr_reads_the_curve_in_log_lr():
    lrs = list(np.geomspace(1e-6, 1.0, 61))
    # flat, then falling fastest around 1e-3, lowest at 1e-1, then rising
    log_lr = np.log10(lrs)
    losses = list(
        2.3 - 2.0 / (1 + np.exp(-3 * (log_lr + 3))) + 5 * np.clip(log_lr + 1, 0, None) ** 2
    )
    suggestion, min_loss_lr, steepest_lr = suggest_lr(lrs, losses)
    assert min_loss_lr == pytest.approx(0.1)
    assert steepest_lr == pytest.approx(1e-3)
    assert suggestion == pytest.approx(1e-3)


def test_plot_and_json(default_sweep, tmp_path):
    _, _, _, result = default_sweep
    path = result.save_plot(tmp_path / "lr_range.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    saved = json.loads(json.dumps(result.as_dict()))
    assert saved["suggestion"] == result.suggestion and len(saved["lrs"]) == len(result.lrs)


def test_settings_from_the_tune_config():
    node = OmegaConf.load(CONF_DIR / "tune" / "lr.yaml").tune
    tune = settings(node, TuneConfig, "tune")
    assert (tune.min_lr, tune.max_lr, tune.steps, tune.apply) == (
        1e-6,
        1.0,
        100,
        True,
    )
    assert tune.test_kwargs() == {"min_lr": 1e-6, "max_lr": 1.0, "steps": 100, "smoothing": 0.9}
    for bad, message in [
        ({"min_lr": 1.0, "max_lr": 0.1}, "min_lr"),
        ({"steps": 1}, "tune.steps"),
        ({"smoothing": 1.0}, "tune.smoothing"),
        ({"apply": "maybe"}, "tune.apply"),
        ({"max_lr": "big"}, "max_lr must be a number"),
        ({"lr_max": 1.0}, "tune.lr_max"),
    ]:
        with pytest.raises(UserError, match=message):
            settings({**node, **bad}, TuneConfig, "tune")


def test_suggested_lr_trains_to_the_goal(default_sweep, tmp_path):
    """The point of the feature: the lr it suggests trains the default CNN to the goal."""
    _, _, _, result = default_sweep
    # stop_when_met: the run ends at the first epoch that meets the goal, which keeps this test short
    overrides = [f"optimizer.lr={result.suggestion}", "goal.stop_when_met=true"]
    _, summary, _ = train(tmp_path, overrides)
    assert summary["goal_met"] is True, summary["metrics"]
    assert summary["metrics"]["val/acc"] >= 0.98


def test_the_autopilots_range_test_reads_a_table_whose_sizes_are_auto(tmp_path, csv_table):
    """data=csv leaves input_shape and num_classes `auto` until the data is read: the range test
    remedy builds the data first, so the task gets real sizes (it used to raise on model.net)."""
    from rich.console import Console

    from practicum.autopilot.range_test import suggested_lr

    cfg = compose_train(tmp_path, ["data=csv", f"data.path={csv_table}", "model=mlp"])
    assert cfg.data.input_shape == "auto"
    suggested_lr(cfg, tmp_path, 1, Console(width=120))
    saved = json.loads((tmp_path / "lr_range_01.json").read_text())
    assert saved["suggestion"] > 0 and (tmp_path / "lr_range_01.png").is_file()
