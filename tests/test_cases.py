"""The lecture's cases, each produced by a real run of its own cause, and told apart: the case the
diagnosis names, and its first remedy, which must be a change this config accepts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from practicum.config.validate import validate

from conftest import compose_train, train

NO_BASELINE = "diagnosis.baseline_model=null"


def spirals(path: Path, n: int = 1200, seed: int = 0) -> Path:
    """Two interleaved spirals: no linear model separates them, a small MLP barely does."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.05, 1.0, n // 2)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    x = np.concatenate([arm, -arm]) + rng.normal(0, 0.3, (n, 2))
    y = np.repeat([0, 1], n // 2)
    np.savez(path, x=x.astype(np.float32), y=y)
    return path


def noisy_blobs(path: Path, n: int = 1000, flip: float = 0.3, seed: int = 1) -> Path:
    """Two well separated blobs whose labels are wrong for `flip` of the examples."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 1, (n, 6)) + 4 * y[:, None]
    wrong = rng.random(n) < flip
    np.savez(path, x=x.astype(np.float32), y=np.where(wrong, 1 - y, y))
    return path


def _diagnosis(summary: dict) -> dict:
    diagnosis = summary["diagnosis"]
    # the panel's met/not met is the verdict's, whatever the case
    assert summary["goal_met"] == (diagnosis["verdict"] == "goal_met")
    return diagnosis


def _first_change_validates(tmp_path: Path, base: list[str], diagnosis: dict) -> None:
    for change in diagnosis["remedies"][0]["changes"]:
        validate(compose_train(tmp_path, [*base, *change]))


@pytest.mark.slow
def test_a_tiny_net_on_spirals_is_under_capacity(tmp_path: Path):
    base = [
        "data=npz",
        f"data.path={spirals(tmp_path / 'spirals.npz')}",
        "model=mlp",
        "model.net.hidden_units=3",
        "model.net.depth=1",
        "model.net.batch_norm=false",
        "model.net.dropout=0",
        "optimizer.lr=0.01",
        "trainer.max_epochs=60",
        "callbacks.early_stopping.patience=60",
        "goal.target=0.95",
    ]
    _, summary, _ = train(tmp_path, base)
    diagnosis = _diagnosis(summary)
    assert diagnosis["verdict"] == "high_train_error" and diagnosis["case"] == "under_capacity"
    first = diagnosis["remedies"][0]
    assert first["key"] == "capacity" and ["model.net.hidden_units=6"] in first["changes"]
    _first_change_validates(tmp_path, base, diagnosis)


@pytest.mark.slow
def test_noisy_labels_are_a_noise_floor_not_a_capacity_problem(tmp_path: Path):
    base = [
        "data=npz",
        f"data.path={noisy_blobs(tmp_path / 'blobs.npz')}",
        "model=mlp",
        "trainer.max_epochs=15",
        "goal.target=0.9",
    ]
    _, summary, _ = train(tmp_path, base)
    diagnosis = _diagnosis(summary)
    assert 0.6 < summary["metrics"]["val/acc"] < 0.8  # what 30% wrong labels allow
    assert diagnosis["case"] == "noise_floor", diagnosis
    assert diagnosis["stop"] and "labels" in diagnosis["stop"]
    keys = [remedy["key"] for remedy in diagnosis["remedies"]]
    assert keys[0] == "check_labels" and "capacity" not in keys


@pytest.mark.slow
def test_a_recurrent_net_at_a_huge_learning_rate_is_told_to_lower_it(tmp_path: Path):
    base = ["data=digits_rows", "model=gru", "optimizer.lr=5", "trainer.max_epochs=3", NO_BASELINE]
    _, summary, _ = train(tmp_path, base)
    diagnosis = _diagnosis(summary)
    assert diagnosis["case"] == "lr_too_high", diagnosis
    first = diagnosis["remedies"][0]
    assert first["key"] == "lower_lr"
    assert all(float(change[0].split("=")[1]) <= 1e-3 for change in first["changes"])
    assert not diagnosis["next_steps"][0].startswith("Train longer")
    _first_change_validates(tmp_path, base, diagnosis)


@pytest.mark.slow
def test_a_loss_that_never_leaves_its_start_asks_for_a_higher_learning_rate(tmp_path: Path):
    base = ["model=mlp", "optimizer.lr=1e-7", "trainer.max_epochs=2", NO_BASELINE]
    _, summary, _ = train(tmp_path, base)
    diagnosis = _diagnosis(summary)
    assert diagnosis["case"] == "lr_too_low", diagnosis
    first = diagnosis["remedies"][0]
    assert first["key"] == "raise_lr"
    assert all(float(change[0].split("=")[1]) >= 1e-3 for change in first["changes"])


@pytest.mark.slow
def test_two_epochs_with_the_loss_still_falling_is_too_few_steps(tmp_path: Path):
    base = ["model=cnn", "optimizer.lr=3e-4", "trainer.max_epochs=2", NO_BASELINE]
    _, summary, _ = train(tmp_path, base)
    diagnosis = _diagnosis(summary)
    assert diagnosis["verdict"] == "high_train_error"
    assert diagnosis["case"] == "too_few_steps", diagnosis
    assert diagnosis["remedies"][0]["key"] == "train_longer"
    assert ["trainer.max_epochs=7", "callbacks.early_stopping.patience=10"] in diagnosis[
        "remedies"
    ][0]["changes"]


def test_a_run_cut_short_is_labelled_so_and_not_told_to_add_capacity(tmp_path: Path):
    _, summary, _ = train(tmp_path, ["debug=fast", "model=resnet", NO_BASELINE])
    diagnosis = _diagnosis(summary)
    assert diagnosis["case"] == "cut_short", diagnosis
    assert "limit_train_batches=2" in diagnosis["headline"]
    keys = [remedy["key"] for remedy in diagnosis["remedies"]]
    assert keys[0] == "full_run" and "capacity" not in keys


def test_the_baseline_is_fit_with_its_own_settings_not_the_runs(tmp_path: Path):
    """At lr 1e-6 the run learns nothing; the linear baseline beside it must still be a fair
    reference (logistic regression on the same split), or the comparison means nothing."""
    from sklearn.linear_model import LogisticRegression

    from practicum.run.build import build_datamodule

    from conftest import compose_train as compose

    _, summary, _ = train(
        tmp_path, ["data=breast_cancer", "model=mlp", "optimizer.lr=1e-6", "trainer.max_epochs=2"]
    )
    assert summary["metrics"]["val/acc"] < 0.8 < 0.9 < summary["baseline"]["val/acc"]
    # the same numbers as scikit-learn's logistic regression fit on the run's own split
    datamodule = build_datamodule(compose(tmp_path, ["data=breast_cancer"]))
    (x, y), (xv, yv) = datamodule.splits["train"], datamodule.splits["val"]
    fitted = LogisticRegression(max_iter=2000, random_state=42).fit(x.double().numpy(), y.numpy())
    assert summary["baseline"]["val/acc"] == pytest.approx(
        fitted.score(xv.double().numpy(), yv.numpy())
    )
