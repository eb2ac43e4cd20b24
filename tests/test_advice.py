"""Every change the diagnosis can advise is a command that runs: for every model config, each
override it may suggest composes and passes validation (the key exists, the value is in range)."""

from __future__ import annotations

from pathlib import Path

import pytest

from practicum.config.knobs import lr_grid, net_knobs, run_changes
from practicum.config.validate import validate
from practicum.run.build import build_datamodule, build_task
from test_image_data import write_image_folder

from conftest import CONF_DIR, compose_train

MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
DATA_FOR = {
    "gru": ["data=digits_rows"],
    "lstm": ["data=digits_rows"],
    "segnet": ["data=shapes_segmentation"],
    "fcn": ["data=shapes_segmentation"],
    "faster_rcnn": ["data=shapes_detection"],
    "retinanet": ["data=shapes_detection"],
}


def _advised(tmp_path: Path, base: list[str]) -> tuple[object, dict[str, list[list[str]]]]:
    cfg = compose_train(tmp_path, base)
    validate(cfg)
    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    return cfg, run_changes(cfg, task, datamodule)


# the families a fork changes most run in make test; the others in the slow layer
FAST_ADVICE = {"mlp", "cnn"}


@pytest.mark.parametrize(
    "model", [m if m in FAST_ADVICE else pytest.param(m, marks=pytest.mark.slow) for m in MODELS]
)
def test_every_advised_change_composes_and_validates(tmp_path: Path, model: str):
    base = [f"model={model}", *DATA_FOR.get(model, [])]
    _, changes = _advised(tmp_path, base)
    assert changes, f"model={model}: no change to advise at all"
    tried = 0
    for options in changes.values():
        for change in options:
            cfg = compose_train(tmp_path, [*base, *change])
            validate(cfg)  # raises UserError, one line, for a key the model lacks or a bad value
            tried += 1
    print(f"model={model}: {tried} changes validated")


def test_image_data_gets_augmentation_advice_and_it_validates(tmp_path: Path):
    root = write_image_folder(tmp_path / "images")
    base = ["model=cnn", "data=image_folder", f"data.root={root}", "data.image_size=32"]
    _, changes = _advised(tmp_path, base)
    assert ["data.augment=strong"] in changes["regularize_up"]
    assert ["data.augment=none"] in changes["regularize_down"]
    for change in changes["regularize_up"] + changes["regularize_down"]:
        validate(compose_train(tmp_path, [*base, *change]))


def test_a_knob_is_advised_only_where_the_net_has_it(tmp_path: Path):
    """residual_mlp has no batch norm; the MLP has it on already: neither is told to switch it on."""
    residual, _ = _advised(tmp_path, ["model=residual_mlp"])
    mlp, mlp_changes = _advised(tmp_path, ["model=mlp"])
    assert "batch_norm" not in net_knobs(residual)
    assert not any("batch_norm" in " ".join(c) for c in run_changes(residual)["regularize_up"])
    assert not any("batch_norm=true" in " ".join(c) for c in mlp_changes["regularize_up"])
    assert ["model.net.hidden_units=256"] in mlp_changes["capacity_up"]


def test_checks_are_advised_only_where_they_run(tmp_path: Path):
    _, classifier = _advised(tmp_path, ["model=mlp"])
    _, vae = _advised(tmp_path, ["model=vae"])
    _, segmentation = _advised(tmp_path, ["model=segnet", "data=shapes_segmentation"])
    assert "checks" in classifier and "checks" in vae and "checks" in segmentation
    assert "checks" not in run_changes(compose_train(tmp_path, ["model=mlp"]), object(), None)


def test_class_weights_are_advised_to_classifiers_that_do_not_weigh_them(tmp_path: Path):
    plain = run_changes(compose_train(tmp_path, ["model=mlp"]))
    balanced = run_changes(compose_train(tmp_path, ["model=mlp", "model.class_weights=balanced"]))
    vae = run_changes(compose_train(tmp_path, ["model=vae"]))
    assert plain["class_weights"] == [["model.class_weights=balanced"]]
    assert "class_weights" not in balanced and "class_weights" not in vae
    validate(
        compose_train(tmp_path, ["model=lstm", "data=digits_rows", *plain["class_weights"][0]])
    )


@pytest.mark.parametrize(
    "optimizer, lr, direction, expected",
    [
        # far too high: the sane default first, then the decade below it
        ("rmsprop", 10.0, "down", [1e-3, 3e-4, 1e-4]),
        ("adam", 1e-6, "up", [1e-3, 3e-3, 1e-2]),  # far too low: the sane decade
        ("adam", 3e-3, "down", [1e-3, 3e-4, 1e-4]),  # near the default: steps away from it
        ("sgd", 1e-2, "up", [3e-2, 0.1, 0.3]),
    ],
)
def test_learning_rates_advised_are_never_centred_on_the_bad_value(
    tmp_path: Path, optimizer: str, lr: float, direction: str, expected: list[float]
):
    cfg = compose_train(tmp_path, [f"optimizer={optimizer}", f"optimizer.lr={lr}"])
    grid = lr_grid(cfg, direction)
    assert grid == pytest.approx(expected)
    assert all(v < lr for v in grid) if direction == "down" else all(v > lr for v in grid)
