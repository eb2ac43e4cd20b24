"""tune=data_size: the power-law fit and its verdicts, nested stratified subsets, and the mode
through the real CLI on tiny settings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from practicum.config import TuneConfig, settings
from practicum.config.goal import Goal
from practicum.data.sklearn_bundled import SklearnBundledDataModule
from practicum.data.splits import subset
from practicum.errors import UserError
from practicum.methodology.data_curve import (
    curve_sizes,
    fit_power_law,
    learning_curve,
    plot_curve,
    predicted_error,
    report_lines,
    verdict,
)

from conftest import run_cli

ACCURACY = Goal("val/acc", "max", 0.98)  # target error 0.02
SIZES = [25, 50, 100, 200]
VAL = 10_000  # validation examples: little sampling noise


def test_the_fit_recovers_a_known_power_law():
    sizes = [25, 50, 100, 200, 400]
    fit = fit_power_law(sizes, [3.0 * n**-0.6 for n in sizes], floor=1e-9)
    assert fit["a"] == pytest.approx(3.0) and fit["b"] == pytest.approx(0.6)


def test_a_falling_curve_predicts_the_examples_the_goal_needs(tmp_path: Path):
    rng = np.random.default_rng(0)
    # two seeds each, 5% noise around error = 2 n^-0.5: the goal (0.02) needs 10_000 examples
    errors = [[2.0 * n**-0.5 * (1 + 0.05 * rng.standard_normal()) for _ in range(2)] for n in SIZES]
    curve = learning_curve(SIZES, errors, [0, 1], ACCURACY, val_examples=VAL)
    assert curve["b"] == pytest.approx(0.5, abs=0.05) and not curve["flattened"]
    assert not curve["goal_met_at_full_size"]
    assert 5_000 < curve["examples_for_goal"] < 20_000
    assert "predicts about" in verdict(curve) and str(curve["examples_for_goal"]) in verdict(curve)
    # the prediction at any size is a function of the json alone
    saved = json.loads(json.dumps(curve))
    for n in (200, 1257, 10**6):
        assert predicted_error(saved, n) == pytest.approx(curve["a"] * n ** -curve["b"])
    assert predicted_error(saved, curve["examples_for_goal"]) <= 0.02
    path = plot_curve(saved, tmp_path / "data_curve.png", "synthetic")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_flat_curve_above_the_target_has_flattened():
    errors = [[0.11, 0.09], [0.10, 0.10], [0.10, 0.095], [0.099, 0.10]]
    curve = learning_curve(SIZES, errors, [0, 1], ACCURACY, val_examples=VAL)
    assert curve["flattened"] and curve["examples_for_goal"] is None
    assert "more data will not get there" in verdict(curve)


def test_failed_runs_are_left_out_of_the_fit():
    errors = [[0.40, None], [None, None], [0.10, 0.12], [0.05, None]]
    curve = learning_curve(SIZES, errors, [0, 1], ACCURACY, val_examples=VAL)
    assert curve["mean_errors"] == [0.40, None, pytest.approx(0.11), 0.05]
    fit = fit_power_law([25, 100, 200], [0.40, 0.11, 0.05], floor=1e-3)
    assert (curve["a"], curve["b"]) == (pytest.approx(fit["a"]), pytest.approx(fit["b"]))
    assert json.loads(json.dumps(curve))["errors"][1] == [None, None]


def test_a_curve_that_bends_flat_at_the_end_has_flattened():
    """Steep early, flat over the last doubling: the fit's slope alone would overpromise."""
    errors = [[0.40], [0.20], [0.10], [0.099]]
    curve = learning_curve(SIZES, errors, [0], ACCURACY, val_examples=VAL)
    assert curve["b"] > 0.5 and curve["last_slope"] < 0.05 and curve["flattened"]


def test_a_flat_last_step_within_the_noise_is_not_flattened():
    """Digits, 200 examples, 3 seeds on 270 validation examples: the errors at 100 and 200 came out
    equal, but the 200 point is within the noise of the line through all four."""
    last = [0.056, 0.056, 0.052]
    errors = [[0.267, 0.244, 0.293], [0.133, 0.130, 0.122], last, last]
    curve = learning_curve(SIZES, errors, [42, 43, 44], ACCURACY, val_examples=270)
    assert curve["last_slope"] == pytest.approx(0.0) and curve["b"] > 0.5
    assert not curve["flattened"] and curve["examples_for_goal"] > 200
    assert "the curve is bending" in "\n".join(report_lines(curve, "digits"))


def test_a_goal_met_at_the_full_size_says_so():
    errors = [[0.08], [0.04], [0.02], [0.01]]
    curve = learning_curve(SIZES, errors, [0], ACCURACY, val_examples=VAL)
    assert curve["goal_met_at_full_size"] and "already met" in verdict(curve)
    # a loss goal: the value itself is the error
    loss = learning_curve(SIZES, errors, [0], Goal("val/loss", "min", 0.05), VAL)
    assert loss["target_error"] == 0.05 and loss["goal_met_at_full_size"]


def test_sizes_too_small_or_too_few_are_one_line():
    assert curve_sizes([0.125, 0.25, 0.5, 1.0], 200, 10) == [25, 50, 100, 200]
    with pytest.raises(UserError, match="keeps 5, fewer than 6, two per class of 3"):
        curve_sizes([0.05, 1.0], 100, 3)
    with pytest.raises(UserError, match="give one size only"):
        curve_sizes([0.99, 1.0], 20, 2)
    for bad in ([0.5, 0.25], [0.5], [0.0, 1.0], [0.5, 1.5]):
        with pytest.raises(UserError, match="tune.fractions=.* must be two or more increasing"):
            settings({"mode": "data_size", "fractions": bad}, TuneConfig, "tune")


def test_subsets_are_nested_and_stratified():
    rng = np.random.default_rng(1)
    labels = rng.choice(3, size=600, p=[0.6, 0.3, 0.1])
    indices = rng.permutation(600)[:400]  # a training split, in the order a split returns it
    small, medium, large = (subset(indices, labels, n, seed=0) for n in (40, 100, 250))
    assert set(small) < set(medium) < set(large) < set(indices)
    shares = np.bincount(labels[indices], minlength=3) / len(indices)
    for part in (small, medium, large):
        counts = np.bincount(labels[part], minlength=3)
        assert np.all(np.abs(counts - shares * len(part)) <= 1), (counts, shares * len(part))
    # the set decides, not its order; another seed draws another subset
    assert np.array_equal(subset(indices[::-1], labels, 100, seed=0), medium)
    assert not np.array_equal(subset(indices, labels, 100, seed=1), medium)


def test_a_data_modules_training_subsets_are_nested():
    def rows(size: int | None) -> set[tuple[float, ...]]:
        data = SklearnBundledDataModule("wine", normalize="none", train_subset=size)
        data.setup()
        return {tuple(row.tolist()) for row in data.splits["train"][0]}

    quarter, half, whole = rows(30), rows(60), rows(None)
    assert len(quarter) == 30 and quarter < half < whole


def test_the_mode_writes_its_curve(tmp_path: Path):
    run_dir = tmp_path / "curve"
    result = run_cli(
        "train.py",
        "tune=data_size",
        "data=wine",
        "model=mlp",
        "trainer.max_epochs=3",
        "tune.seeds=1",
        "tune.fractions=[0.25,0.5,1.0]",
        "diagnosis.baseline_model=null",
        "callbacks.progress_bar=null",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "data_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curve = json.loads((run_dir / "data_curve.json").read_text())
    full = curve["full_size"]
    assert curve["sizes"] == [round(full / 4), round(full / 2), full] and curve["seeds"] == [42]
    assert all(math.isfinite(e) and 0 <= e <= 1 for row in curve["errors"] for e in row)
    assert isinstance(curve["flattened"], bool) and math.isfinite(curve["a"])
    for n in curve["sizes"]:
        summary = json.loads(
            (run_dir / f"examples_{n:03d}" / "seed_42" / "summary.json").read_text()
        )
        assert summary["status"] == "completed"
        assert 1 - summary["metrics"]["val/acc"] == pytest.approx(
            curve["errors"][curve["sizes"].index(n)][0]
        )
    report = (run_dir / "report.md").read_text()
    assert verdict(curve) in report and verdict(curve) in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["data=wine", "model=mlp", "tune.fractions=[0.01,1.0]"], "keeps 1, fewer than 6"),
        (["tune.fractions=[0.5,0.25]"], "must be two or more increasing numbers in (0, 1]"),
        (["model=vae", "data=digits"], "draws the learning curve of a supervised classifier"),
    ],
    ids=["too-small", "not-increasing", "not-supervised"],
)
def test_bad_input_is_one_line_before_training(tmp_path: Path, args, expected):
    log_dir = tmp_path / "logs"
    result = run_cli("train.py", "tune=data_size", *args, f"paths.log_dir={log_dir}")
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("practicum: error: "), result.stderr[-3000:]
    assert expected in lines[0], lines[0]
    assert not list(log_dir.glob("**/summary.json")) and not list(log_dir.glob("**/data_curve*"))
    assert not list(log_dir.glob("*/runs/*")), "a refused run leaves no run folder"
