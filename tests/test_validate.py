"""Config checks: each rule applies to the parameter it was written for, and says so in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from practicum.config import SCHEMAS, part_name
from practicum.config.validate import declared_problem, validate
from practicum.errors import UserError

from conftest import CONF_DIR, compose_train, run_cli


def _refused(tmp_path: Path, overrides: list[str]) -> str:
    cfg = compose_train(tmp_path, overrides)
    with pytest.raises(UserError) as caught:
        validate(cfg)
    return str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # a net's own parameters, from the annotations of its constructor
        (
            ["model=residual_mlp", "model.net.hidden_units=0"],
            "model.net.hidden_units=0 is invalid: hidden_units must be a whole number >= 1 "
            "(for example model.net.hidden_units=128)",
        ),
        (
            ["model=mlp", "model.net.depth=two"],
            "model.net.depth='two' is invalid: depth must be a whole number (for example model.net.depth=2)",
        ),
        (["model.net.channels=[32,0]"], "model.net.channels=[32, 0] is invalid: channels must be"),
        (
            ["data.val_fraction=1.0"],
            "data.val_fraction=1.0 is invalid: val_fraction must be in (0, 1)",
        ),
        # a data module's parameters, declared on its base class and reached through **kwargs
        (["data=wine", "model=mlp", "data.batch_size=-3"], "data.batch_size=-3 is invalid"),
        # a target practicum does not own: the parameter's rule from the table
        (
            ["optimizer=sgd", "optimizer.momentum=1.5"],
            "optimizer.momentum=1.5 is invalid: momentum must be in [0, 1)",
        ),
        (["callbacks.early_stopping.patience=0"], "callbacks.early_stopping.patience=0 is invalid"),
        # the groups practicum owns: ranges on their schemas' fields
        (
            ["debug=checks", "checks.overfit_target=1.5"],
            "checks.overfit_target=1.5 is invalid: overfit_target must be in (0, 1]",
        ),
        (["goal.mode=up"], "goal.mode='up' is invalid: mode must be one of max, min"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_parameter(tmp_path, overrides, message):
    error = _refused(tmp_path, overrides)
    assert message in error and "\n" not in error


def test_a_rule_applies_only_to_the_parameter_it_was_written_for(tmp_path: Path):
    # ReduceLROnPlateau's patience may be 0 (reduce at once); early stopping's may not
    validate(compose_train(tmp_path, ["scheduler=plateau", "scheduler.factory.patience=0"]))
    assert "early_stopping.patience=0" in _refused(
        tmp_path, ["scheduler=plateau", "callbacks.early_stopping.patience=0"]
    )


def test_a_key_that_is_not_a_parameter_names_the_closest_or_the_valid_ones(tmp_path: Path):
    error = _refused(tmp_path, ["+model.net.widht=3"])
    assert error.startswith(
        "model.net.widht is not an argument of practicum.nets.cnn.ConvNet: use one of in_shape,"
    )
    assert "kernel_size" in error and "dropout" in error
    assert _refused(tmp_path, ["+optimizer.lrr=0.1"]) == (
        "optimizer.lrr is not an argument of torch.optim.Adam: did you mean optimizer.lr?"
    )
    # what the calling code passes (an optimizer's params) is not offered
    assert "params" not in _refused(tmp_path, ["+optimizer.zzz=1"])
    # through **kwargs to the base class: its parameters count, others do not
    assert _refused(tmp_path, ["+data.bach_size=3"]) == (
        "data.bach_size is not an argument of practicum.data.sklearn_bundled."
        "SklearnBundledDataModule: did you mean data.batch_size?"
    )
    # the keys beside a scheduler's factory, and the groups practicum owns
    assert _refused(tmp_path, ["+scheduler.intervl=step"]) == (
        "scheduler.intervl is not a setting: did you mean scheduler.interval?"
    )
    assert _refused(tmp_path, ["+goal.taget=0.9"]) == (
        "goal.taget is not a setting: did you mean goal.target?"
    )


def test_the_missing_path_hint_comes_from_the_data_module(tmp_path: Path):
    error = _refused(tmp_path, ["data=csv", "data.path=/no/such.csv", "model=mlp"])
    assert error == (
        "data.path='/no/such.csv' does not exist: point data.path at a CSV file with a header row, "
        "numeric feature columns and a label column"
    )
    error = _refused(tmp_path, ["data=cifar10", "data.root=/no/such"])
    assert "cifar-10-batches-py/data_batch_1" in error and "data.download=true" in error


def test_every_model_and_data_option_declares_its_problem(tmp_path: Path):
    kinds = {"classification", "sequence_classification", "detection", "segmentation", "generation"}
    for group in ("model", "data"):
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            node = OmegaConf.load(path)
            assert declared_problem(node) in kinds, path
    assert declared_problem(OmegaConf.load(CONF_DIR / "model" / "lstm.yaml")) == (
        "sequence_classification"
    )


def test_instantiated_nodes_hold_only_constructor_arguments(tmp_path: Path):
    cfg = compose_train(tmp_path, ["model=resnet", "data=wine"])
    for group in ("model", "data"):
        assert not {"name", "problem", "path_hint", "compile"} & set(cfg[group]), group
    assert part_name(cfg, "model") == "resnet" and part_name(cfg, "data") == "wine"
    assert part_name(OmegaConf.create({"model": {}}), "model") == "?"


def test_the_owned_groups_are_typed(tmp_path: Path):
    cfg = compose_train(
        tmp_path,
        [
            "debug=checks",
            "tune=lr",
            "search=random",
            "experiment=grid_vs_random",
            "autopilot=default",
        ],
    )
    for group, schema in SCHEMAS.items():
        assert OmegaConf.get_type(cfg[group]) is schema, group


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["goal.target=abc"], "goal.target=abc (Value 'abc' of type 'str' could not be converted"),
        (["search=grid", "search.n_trials=lots"], "search.n_trials=lots"),
        (
            ["trainer.max_epoch=3"],
            "trainer.max_epoch is not a key of the config: did you mean trainer.max_epochs?",
        ),
        # a key that is an argument but not in the option's file: Hydra's advice to add it stays
        (["data.normalize=global"], "To append to your config use +data.normalize=global"),
    ],
)
def test_a_type_error_while_composing_is_one_line(tmp_path: Path, args, message):
    result = run_cli("train.py", *args, f"paths.log_dir={tmp_path}/logs")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert re.sub(r"practicum: error:.*\n?", "", result.stderr).strip() == ""
