"""The checks that see the code, against the zoo of bugs users write (tests/zoo/, a package of a
user's own, with its configs on Hydra's search path): each bug fails the check that names it, its
healthy twin passes every check, and a short run of the bug ends in `code_defect` with its layer
named. The project's own models are the healthy controls (tests/test_code_controls.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

ZOO_CONF = Path(__file__).parent / "zoo" / "conf"
SEARCH = f"hydra.searchpath=[file://{ZOO_CONF}]"
TRUST = {"PRACTICUM_TRUST": "zoo"}
QUICK = ["diagnosis.audit=false", "diagnosis.baseline_model=null", "callbacks.progress_bar=null"]
# (what the bug is, its override, the check that names it, the layer that check names, the override
# of its healthy twin)
BUGS = [
    (
        "softmax",
        "model=softmax_output",
        "probabilities_output",
        "squash (Softmax)",
        "model.net._target_=zoo.softmax_output.LogitsMLP",
    ),
    (
        "frozen",
        "model=frozen_layer",
        "parameters_learn",
        "encoder.1",
        "model.net._target_=zoo.frozen_layer.TrainedMLP",
    ),
    (
        "dead_relu",
        "model=dead_relu",
        "dead_units",
        "hidden2 (Linear) → relu in DeadReLU.forward",
        "model.net._target_=zoo.dead_relu.LiveReLU",
    ),
    (
        "saturated_tanh",
        "model=saturated_tanh",
        "dead_units",
        "hidden (Linear) → tanh in SaturatedTanh.forward",
        "model.net._target_=zoo.saturated_tanh.ScaledTanh",
    ),
    (
        "eval_dropout",
        "model=eval_dropout",
        "deterministic_eval",
        "dropout in AlwaysDropout.forward",
        "model.net._target_=zoo.eval_dropout.EvalDropout",
    ),
    (
        "folded_batch",
        "model=folded_batch",
        "batch_independence",
        "reshape in FoldedConv.forward",
        "model.net._target_=zoo.folded_batch.FlatConv",
    ),
    (
        "hidden_layers",
        "model=hidden_layers",
        "parameters_learn",
        "hidden[0], hidden[1]",
        "model.net._target_=zoo.hidden_layers.RegisteredLayers",
    ),
    (
        "layer_in_forward",
        "model=layer_in_forward",
        "parameters_learn",
        "linear in FreshHead.forward",
        "model.net._target_=zoo.layer_in_forward.BuiltHead",
    ),
    (
        "raw_scale",
        "data=raw_digits model=linear",
        "input_scale",
        "data.normalize=auto",
        "data._target_=zoo.raw_digits.ScaledDigits",
    ),
]
IDS = [bug[0] for bug in BUGS]
# what a code defect is never told to try: tuning
TUNING = {"capacity", "raise_lr", "lower_lr", "range_test", "train_longer", "less_regularization"}


def _checks(tmp_path: Path, *overrides: str) -> dict[str, dict]:
    """`python train.py debug=checks <overrides>` with the zoo trusted: checks.json, by name."""
    result = run_cli(
        "train.py", SEARCH, *overrides, "debug=checks", f"paths.log_dir={tmp_path}", env=TRUST
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    (path,) = tmp_path.glob("checks/runs/*/checks.json")
    content = json.loads(path.read_text())
    assert result.returncode == (0 if content["all_passed"] else 1)
    return {check["name"]: check for check in content["checks"]}


def _run(tmp_path: Path, *overrides: str) -> dict:
    """`python train.py <overrides>` with the zoo trusted: its summary.json."""
    result = run_cli("train.py", SEARCH, *overrides, f"paths.log_dir={tmp_path}", env=TRUST)
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = tmp_path.glob("train/runs/*/summary.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize(("bug", "override", "check", "layer", "twin"), BUGS, ids=IDS)
def test_each_bug_fails_the_check_that_names_it(tmp_path, bug, override, check, layer, twin):
    checks = _checks(tmp_path, *override.split())
    assert checks[check]["status"] == "fail", checks[check]
    assert layer in checks[check]["detail"]


@pytest.mark.parametrize(("bug", "override", "check", "layer", "twin"), BUGS, ids=IDS)
def test_each_healthy_twin_passes_every_check(tmp_path, bug, override, check, layer, twin):
    checks = _checks(tmp_path, *override.split(), twin)
    assert {name: c["status"] for name, c in checks.items() if c["status"] == "fail"} == {}
    assert checks[check]["status"] == "pass"


def test_a_net_whose_output_ignores_its_input_fails_one_named_check(tmp_path):
    """No traceback from a gradient that is None: the input-independence check fails it."""
    checks = _checks(tmp_path, "model=constant_output")
    assert checks["input_independent_baseline"]["status"] == "fail"
    assert checks["input_independent_baseline"]["value"] == 1.0
    assert (
        "the same, so the model makes no use of the input"
        in (checks["input_independent_baseline"]["detail"])
    )
    assert checks["batch_independence"]["status"] == "skip"
    twin = _checks(
        tmp_path / "twin",
        "model=constant_output",
        "model.net._target_=zoo.constant_output.InputUsed",
    )
    assert all(c["status"] != "fail" for c in twin.values()), twin


def test_a_declared_freeze_passes_and_is_reported_as_deliberate(tmp_path):
    checks = _checks(
        tmp_path, "model=frozen_layer", "model.net._target_=zoo.frozen_layer.DeclaredFrozenEncoder"
    )
    learn = checks["parameters_learn"]
    assert learn["status"] == "pass" and learn["value"] == 0
    assert "frozen on purpose: encoder" in learn["detail"]


@pytest.mark.parametrize(("bug", "override", "check", "layer", "twin"), BUGS, ids=IDS)
def test_a_short_run_of_each_bug_is_a_code_defect_naming_its_layer(
    tmp_path, bug, override, check, layer, twin
):
    summary = _run(tmp_path, *override.split(), "trainer.max_epochs=3", *QUICK)
    diagnosis = summary["diagnosis"]
    assert not summary["goal_met"] and diagnosis["case"] == "code_defect", diagnosis
    run_layer = {"raw_scale": "the inputs"}.get(bug, layer)
    assert layer in diagnosis["stop"] and run_layer in diagnosis["headline"]
    keys = [remedy["key"] for remedy in diagnosis["remedies"]]
    assert keys[0] == "fix_code" and not TUNING & set(keys), keys
    assert summary["code"]["seconds"] < 2


@pytest.mark.parametrize(("bug", "override", "check", "layer", "twin"), BUGS, ids=IDS)
def test_a_short_run_of_each_twin_records_no_defect(tmp_path, bug, override, check, layer, twin):
    summary = _run(tmp_path, *override.split(), twin, "trainer.max_epochs=1", *QUICK)
    assert summary["diagnosis"]["case"] != "code_defect", summary["diagnosis"]
    code = summary["code"]
    assert not code["frozen"] and not code["unoptimized"] and not code["no_gradient"]
    assert code["probabilities"] is None and code["random_eval"] is None
    assert code["mixing"] == 0 and not code["ignores_input"]
    assert 0.001 <= code["input_scale"] <= 100
    assert code["examples"] == 64
    assert all(layer["off"] <= 0.9 * layer["units"] for layer in code["units_first"])


def test_a_run_with_every_default_is_a_code_defect(tmp_path):
    """The audit and the linear baseline on: the code defect still comes first."""
    summary = _run(tmp_path, "model=softmax_output", "trainer.max_epochs=3")
    assert summary["diagnosis"]["case"] == "code_defect"
    assert summary["audit"] is not None and summary["baseline"] is not None
    report = next(tmp_path.glob("train/runs/*/report.md")).read_text()
    assert "squash (Softmax)" in report and "code_defect" in report


def test_the_autopilot_stops_on_a_code_defect_naming_the_layer(tmp_path):
    result = run_cli(
        "train.py",
        SEARCH,
        "autopilot=default",
        "model=dead_relu",
        "trainer.max_epochs=2",
        *QUICK,
        f"paths.log_dir={tmp_path}",
        env=TRUST,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = tmp_path.glob("*/autopilot/*/autopilot.json")
    state = json.loads(path.read_text())
    assert state["stop_reason"] == "unfixable" and state["steps"] == 1, state
    assert state["stop_message"].startswith("code_defect: A code defect in hidden2 (Linear)")
    assert "hidden2 (Linear)" in result.stdout
