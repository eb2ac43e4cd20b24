"""Judging like an expert: paired evidence on the same validation examples, the right case on
short or small runs, honest words about a small test set, and advice a user can paste."""

from __future__ import annotations

import math
import shlex

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_f1_score

from practicum.autopilot.choose import Candidate, why_inert
from practicum.autopilot.judge import decide
from practicum.autopilot.trail import Step
from practicum.config.goal import Goal
from practicum.methodology.cases import Diagnosis, Remedy, RunFacts
from practicum.methodology.commands import command, pasteable
from practicum.methodology.diagnosis import diagnose
from practicum.methodology.paired import Paired, compare, read_outcomes, recount, write_outcomes
from practicum.tasks.segmentation import mean_iou

GOAL = Goal("val/acc", "max", 0.98)


def _outcomes(correct: np.ndarray, target: np.ndarray | None = None) -> dict[str, np.ndarray]:
    target = np.zeros(len(correct), dtype=np.int32) if target is None else target
    pred = np.where(correct > 0, target, (target + 1) % 3).astype(np.int32)
    return {
        "kind": np.asarray("classification"),
        "acc": correct.astype(np.float32),
        "loss": (1.0 - correct).astype(np.float32),
        "pred": pred,
        "target": target,
        "num_classes": np.asarray(3),
    }


def _step(val: float, se: float, train: float | None = None) -> Step:
    return Step(
        number=0,
        change=[],
        remedy="baseline",
        why="",
        overrides=[],
        objective={"train": train, "val": val, "test": None},
        se_val=se,
        decision="baseline",
        reason="",
        verdict=None,
        case=None,
        goal_met=False,
        wall_time_s=1.0,
    )


# -- paired comparisons -------------------------------------------------------------------------


def test_a_small_real_gain_is_kept_on_paired_evidence_that_the_unpaired_bar_reverts(tmp_path):
    """600 val examples; the change fixes 14 and breaks 2 (a gain of 0.02). The two runs' own
    standard errors put the bar at about 0.027; paired, the standard error of the difference is
    about 0.006, so the gain is three of them."""
    rng = np.random.default_rng(0)
    kept = (rng.random(600) < 0.92).astype(np.float32)
    candidate = kept.copy()
    candidate[np.flatnonzero(kept == 0)[:14]] = 1
    candidate[np.flatnonzero(kept == 1)[:2]] = 0
    target = rng.integers(0, 3, 600).astype(np.int32)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_outcomes(tmp_path / "a", _outcomes(kept, target))
    write_outcomes(tmp_path / "b", _outcomes(candidate, target))
    a, b = read_outcomes(tmp_path / "a"), read_outcomes(tmp_path / "b")
    paired = compare("val/acc", "max", [a], [b])
    assert isinstance(paired, Paired)
    assert paired.gain == pytest.approx(12 / 600)
    d = candidate - kept
    assert paired.se == pytest.approx(d.std() / math.sqrt(600))
    v_kept, v_new = kept.mean(), candidate.mean()
    se_kept = math.sqrt(v_kept * (1 - v_kept) / 600)
    se_new = math.sqrt(v_new * (1 - v_new) / 600)
    best = _step(float(v_kept), se_kept)
    decision, reason = decide(GOAL, best, float(v_new), se_new, False, 0.005, paired)
    assert decision == "kept" and reason.startswith("paired +0.0200") and "beyond 2 SE" in reason
    unpaired = decide(GOAL, best, float(v_new), se_new, False, 0.005, "no outcomes")
    assert unpaired[0] == "reverted" or "probably better" in unpaired[1]
    assert 2 * math.hypot(se_kept, se_new) > paired.gain  # the unpaired bar would not pass it


def test_probably_better_keeps_a_gain_beyond_one_standard_error_and_reverts_noise():
    best = _step(0.90, 0.01)
    kept = decide(GOAL, best, 0.915, 0.01, False, 0.005, Paired(0.015, 0.01, 900, "examples"))
    assert kept[0] == "kept" and "probably better" in kept[1]
    noise = decide(GOAL, best, 0.905, 0.01, False, 0.005, Paired(0.005, 0.01, 900, "examples"))
    assert noise[0] == "reverted" and "not beyond the noise" in noise[1]
    worse = decide(GOAL, best, 0.88, 0.01, False, 0.005, Paired(-0.02, 0.005, 900, "examples"))
    assert worse[0] == "reverted"


def test_a_loss_goal_pairs_in_its_own_direction():
    kept = _outcomes(np.ones(50))
    candidate = {**kept, "loss": kept["loss"] + 0.1}
    paired = compare("val/loss", "min", [kept], [candidate])
    assert isinstance(paired, Paired) and paired.gain == pytest.approx(-0.1, abs=1e-6)


def test_recounted_f1_and_miou_match_the_metrics_they_pair():
    rng = np.random.default_rng(1)
    target = rng.integers(0, 5, 300).astype(np.int32)
    pred = np.where(rng.random(300) < 0.7, target, rng.integers(0, 5, 300)).astype(np.int32)
    outcomes = {
        "kind": np.asarray("classification"),
        "pred": pred,
        "target": target,
        "num_classes": np.asarray(5),
    }
    expected = multiclass_f1_score(
        torch.from_numpy(pred).long(), torch.from_numpy(target).long(), 5, average="macro"
    )
    assert recount(outcomes, "f1", np.arange(300)) == pytest.approx(float(expected), abs=1e-6)
    confusion = rng.integers(0, 20, (8, 4, 4)).astype(np.int32)
    seg = {
        "kind": np.asarray("segmentation"),
        "confusion": confusion,
        "ignore_index": np.asarray(-1),
    }
    whole = mean_iou(torch.from_numpy(confusion.sum(0)).double(), -1)
    assert recount(seg, "miou", np.arange(8)) == pytest.approx(float(whole))
    # a paired bootstrap over images: identical runs differ by exactly nothing
    same = compare("val/miou", "max", [seg], [seg])
    assert isinstance(same, Paired) and same.gain == 0 and same.se == 0
    assert "bootstrap" in same.method and same.n == 8


def test_different_examples_or_no_outcomes_fall_back_and_say_why():
    a = _outcomes(np.ones(40))
    b = _outcomes(np.ones(41))
    assert compare("val/acc", "max", [a], [b]) == "the steps measured different validation examples"
    assert compare("val/map", "max", [a], [a]) == "no per-example outcomes for map"
    reason = decide(GOAL, _step(0.9, 0.01), 0.93, 0.01, False, 0.005, "no per-example outcomes")[1]
    assert reason.startswith("unpaired +0.0300") and "no per-example outcomes" in reason


def test_seeds_average_per_example_before_pairing():
    one = _outcomes(np.array([1, 0, 1, 0], dtype=np.float32))
    two = _outcomes(np.array([1, 1, 1, 0], dtype=np.float32))
    paired = compare("val/acc", "max", [one, one], [one, two])
    assert isinstance(paired, Paired) and paired.gain == pytest.approx(0.125)


# -- changes that cannot act ---------------------------------------------------------------------


def test_patience_at_or_above_max_epochs_and_regularizing_an_unfit_model_are_skipped():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {"trainer": {"max_epochs": 1}, "callbacks": {"early_stopping": {"patience": 5}}}
    )
    best = _step(0.95, 0.02, train=0.96)
    stop = Candidate("early_stopping", ["callbacks.early_stopping.patience=5"], "")
    assert "cannot stop the run" in why_inert(stop, best, GOAL, cfg)
    dropout = Candidate("regularize", ["model.net.dropout=0.1"], "")
    assert "no generalization gap" in why_inert(dropout, best, GOAL, cfg)
    longer = Candidate("train_longer", ["trainer.max_epochs=6"], "")
    assert why_inert(longer, best, GOAL, cfg) is None
    fitted = _step(0.95, 0.02, train=0.999)
    assert why_inert(dropout, fitted, GOAL, cfg) is None


# -- the right case -----------------------------------------------------------------------------


def _facts(metrics: dict[str, float], **extra) -> RunFacts:
    defaults = {"goal": GOAL, "history": {}, "num_classes": 2, "problem": "classification"}
    return RunFacts(metrics=metrics, **{**defaults, **extra})


def _losses(epochs: int, start: float, end: float) -> dict[int, dict[str, float]]:
    values = np.linspace(start, end, epochs)
    return {e: {"train/loss": float(v), "val/loss": float(v)} for e, v in enumerate(values)}


def test_a_one_epoch_run_with_a_gap_within_the_noise_is_too_short_not_overfitting():
    """breast_cancer, one epoch: train 0.985 meets 0.98, val 0.956 on 114 rows misses; the gap is
    within the noise of 114 examples and the loss fell all through the one epoch."""
    metrics = {"train/acc": 0.985, "val/acc": 0.956, "test/acc": 0.95, "train/loss": 0.2}
    first = list(np.linspace(0.69, 0.3, 8))
    facts = _facts(
        metrics,
        history=_losses(1, 0.3, 0.3),
        first_steps=first,
        last_steps=first,
        sizes={"train": 341, "val": 114, "test": 114},
        n_params=2000,
        changes={
            "epochs": [["trainer.max_epochs=6"]],
            "regularize_up": [["model.net.dropout=0.1"]],
        },
    )
    diagnosis = diagnose(facts)
    assert diagnosis.case == "too_few_steps"
    assert diagnosis.remedies[0].key == "train_longer"
    assert "regularize" not in [r.key for r in diagnosis.remedies]
    assert "overfitting" not in diagnosis.headline.lower().replace("no evidence of overfitting", "")


def test_a_converged_small_net_with_a_noisy_gap_gets_capacity_not_regularization():
    metrics = {"train/acc": 0.982, "val/acc": 0.965, "test/acc": 0.96, "train/loss": 0.1}
    facts = _facts(
        metrics,
        history=_losses(30, 0.1, 0.1),
        sizes={"train": 341, "val": 114, "test": 114},
        n_params=101,
    )
    diagnosis = diagnose(facts)
    assert diagnosis.case == "under_capacity"
    assert "no evidence of overfitting" in diagnosis.headline
    assert "±" in diagnosis.headline and "114 examples" in diagnosis.headline


def test_overfitting_beyond_the_noise_is_still_overfitting():
    metrics = {"train/acc": 1.0, "val/acc": 0.85, "test/acc": 0.85, "train/loss": 0.01}
    facts = _facts(
        metrics, history=_losses(30, 0.01, 0.01), sizes={"train": 5000, "val": 1000, "test": 1000}
    )
    assert diagnose(facts).case == "overfitting"


def test_a_val_test_gap_far_beyond_the_noise_stops_at_step_zero_whatever_val_scores():
    """An image folder whose test set is rotated: val 0.931 misses the goal, test 0.145."""
    metrics = {"train/acc": 0.95, "val/acc": 0.931, "test/acc": 0.145, "train/loss": 0.2}
    facts = _facts(
        metrics,
        history=_losses(10, 0.5, 0.2),
        sizes={"train": 1000, "val": 300, "test": 300},
        num_classes=10,
    )
    diagnosis = diagnose(facts)
    assert diagnosis.case == "mismatch" and diagnosis.stop
    assert any("beyond their sampling noise" in line for line in diagnosis.evidence)


def test_a_linear_model_above_the_goal_rules_out_a_noise_floor():
    metrics = {"train/acc": 0.95, "val/acc": 0.95, "test/acc": 0.95, "train/loss": 0.2}
    facts = _facts(
        metrics,
        history=_losses(10, 0.2, 0.2),
        sizes={"train": 341, "val": 114, "test": 114},
        baseline={"val/acc": 0.9912},
        n_params=5000,
    )
    diagnosis = diagnose(facts)
    assert diagnosis.case != "noise_floor" and not diagnosis.stop


def test_a_net_far_from_the_target_gets_a_large_capacity_step():
    changes = {
        "capacity_up": [["model.net.hidden_units=6"], ["model.net.depth=2"]],
        "capacity_up_far": [["model.net.hidden_units=24"], ["model.net.depth=2"]],
    }
    metrics = {"train/acc": 0.58, "val/acc": 0.57, "test/acc": 0.57, "train/loss": 0.68}
    goal = Goal("val/acc", "max", 0.95)
    facts = _facts(
        metrics,
        goal=goal,
        history=_losses(30, 0.68, 0.68),
        sizes={"train": 600, "val": 200, "test": 200},
        n_params=20,
        changes=changes,
    )
    diagnosis = diagnose(facts)
    assert diagnosis.case == "under_capacity"
    capacity = next(r for r in diagnosis.remedies if r.key == "capacity")
    assert capacity.changes[0] == ["model.net.hidden_units=24"]  # x8, not x2
    assert ["model.net.depth=2"] in capacity.changes and [
        "model.net.hidden_units=6"
    ] in capacity.changes


# -- honest words -------------------------------------------------------------------------------


def test_goal_met_on_val_with_a_small_test_below_target_says_exactly_that():
    goal = Goal("val/acc", "max", 0.97)
    metrics = {"train/acc": 1.0, "val/acc": 0.972, "test/acc": 0.861, "train/loss": 0.01}
    facts = _facts(
        metrics,
        goal=goal,
        history=_losses(30, 0.01, 0.01),
        sizes={"train": 106, "val": 36, "test": 36},
    )
    diagnosis = diagnose(facts)
    assert diagnosis.verdict == "goal_met"
    assert "met on validation and test" not in diagnosis.headline
    assert (
        "The goal is met on validation; test 0.8610 is below 0.97 but within its noise "
        "(±0.115 on 36 examples): the test set is too small to confirm." in diagnosis.headline
    )
    assert any("The test split has 36 examples" in line for line in diagnosis.evidence)


# -- advice a user can paste --------------------------------------------------------------------


def _commands(text: str) -> list[list[str]]:
    import re

    return [shlex.split(m) for m in re.findall(r"`(python train\.py[^`]*)`", text)]


def test_every_command_repeats_the_run_overrides_plus_the_change():
    given = ["data=breast_cancer", "model=mlp", "model.net.hidden_units=32"]
    metrics = {"train/acc": 0.90, "val/acc": 0.90, "test/acc": 0.90, "train/loss": 0.3}
    facts = _facts(
        metrics,
        history=_losses(10, 0.6, 0.3),
        sizes={"train": 341, "val": 114, "test": 114},
        n_params=5000,
        overrides=given,
        changes={
            "capacity_up": [["model.net.hidden_units=64"]],
            "range_test": [["tune=lr"]],
            "epochs": [["trainer.max_epochs=20"]],
        },
    )
    diagnosis = diagnose(facts)
    found = [c for step in diagnosis.next_steps for c in _commands(step)]
    assert found, diagnosis.next_steps
    for words in found:
        args = [w for w in words[2:] if w != "-m"]
        assert "data=breast_cancer" in args and "model=mlp" in args, words
        units = [a for a in args if a.startswith("model.net.hidden_units=")]
        assert len(units) == 1, words  # the change replaces the run's value, never adds to it
    assert command(given, ["seed=0,1,2"], multirun=True) == (
        "python train.py -m data=breast_cancer model=mlp model.net.hidden_units=32 seed=0,1,2"
    )


def test_a_run_never_advises_the_mode_it_is_in():
    diagnosis = Diagnosis(
        verdict="high_train_error",
        headline="",
        remedies=[
            Remedy("range_test", "Range test: `python train.py tune=lr`.", [["tune=lr"]]),
            Remedy("balanced_goal", "Judge by F1: `python train.py goal=f1`."),
            Remedy("train_longer", "Longer: `python train.py trainer.max_epochs=20`."),
        ],
    )
    shown = pasteable(diagnosis, ["model=resnet", "tune=lr"])
    assert [r.key for r in shown.remedies] == ["balanced_goal", "train_longer"]
    assert "`python train.py model=resnet tune=lr goal=f1`" in shown.next_steps[0]
