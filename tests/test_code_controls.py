"""The healthy controls: every model config of conf/model/, with its default data, passes every
sanity check that applies (`debug=checks`), and a short run of it records no code defect. Three
quick ones run in `make test`; all of them in `make test-all`."""

from __future__ import annotations

import pytest

from practicum.config import ChecksConfig, settings
from practicum.methodology.checks import run_checks
from practicum.methodology.code_defects import defects
from practicum.methodology.code_facts import CodeFacts
from practicum.run.build import build_datamodule, build_task

from conftest import CONF_DIR, compose_train, train

MODELS = sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml"))
FAST = ["cnn", "linear", "mlp"]
SLOW = [model for model in MODELS if model not in FAST]
# what applies where: a check skipped for a family says why; none of these may be skipped
APPLIES = {
    "classification": {
        "initial_loss",
        "gradient_check",
        "batch_independence",
        "overfit_tiny_subset",
        "input_independent_baseline",
        "probabilities_output",
        "parameters_learn",
        "deterministic_eval",
        "input_scale",
    },
    "segmentation": {"initial_loss", "gradient_check", "batch_independence", "input_scale"},
    "detection": {"input_independent_baseline", "parameters_learn", "dead_units", "input_scale"},
    "generation": {"gradient_check", "batch_independence", "probabilities_output", "input_scale"},
}
SHORT_RUN = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "diagnosis.audit=false",
    "diagnosis.baseline_model=null",
]


def _checks(tmp_path, model: str) -> dict:
    cfg = compose_train(tmp_path, [f"model={model}", "debug=checks"])
    data = build_datamodule(cfg)
    task = build_task(cfg)
    results = run_checks(task, data, settings(cfg.checks, ChecksConfig, "checks"))
    return task, {result.name: result for result in results}


def _passes_every_check_that_applies(tmp_path, model: str) -> None:
    task, results = _checks(tmp_path, model)
    failed = {name: r.detail for name, r in results.items() if r.status == "fail"}
    assert failed == {}, failed
    skipped = {name for name, r in results.items() if r.status == "skip"}
    assert not skipped & APPLIES[task.problem], {n: results[n].detail for n in skipped}
    assert all(results[name].detail for name in skipped)


def _short_run_records_no_defect(tmp_path, model: str, overrides: list[str]) -> dict:
    _, summary, _ = train(tmp_path, [f"model={model}", *overrides])
    facts = CodeFacts.from_dict(summary["code"])
    assert facts is not None and facts.net
    assert defects(facts) == [], summary["code"]
    assert summary["diagnosis"]["case"] != "code_defect"
    return summary


@pytest.mark.parametrize("model", FAST)
def test_quick_models_pass_every_check_that_applies(tmp_path, model):
    _passes_every_check_that_applies(tmp_path, model)


@pytest.mark.parametrize("model", FAST)
def test_a_short_run_of_a_quick_model_records_no_defect(tmp_path, model):
    summary = _short_run_records_no_defect(
        tmp_path, model, ["trainer.max_epochs=2", *SHORT_RUN[3:]]
    )
    code = summary["code"]
    assert code["examples"] == 64 and 0.5 < code["input_scale"] < 2
    # the worst layer's share of dead units at the first and the last epoch (a linear model has
    # no ReLU to count)
    assert len(code["units_first"]) == len(code["units_last"]) == (model != "linear")
    assert 0 < code["seconds"] < 1


@pytest.mark.slow
@pytest.mark.parametrize("model", SLOW)
def test_every_model_passes_every_check_that_applies(tmp_path, model):
    _passes_every_check_that_applies(tmp_path, model)


@pytest.mark.slow
@pytest.mark.parametrize("model", SLOW)
def test_a_short_run_of_every_model_records_no_defect(tmp_path, model):
    _short_run_records_no_defect(tmp_path, model, SHORT_RUN)
