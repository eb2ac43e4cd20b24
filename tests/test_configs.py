"""Every option of every config group composes and instantiates into working objects."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from practicum.config.goal import Goal
from practicum.config.trust import instantiate
from practicum.config.validate import declared_problem, validate
from practicum.run.build import (
    build_callbacks,
    build_datamodule,
    build_loggers,
    build_task,
    build_trainer,
)
from practicum.run.checkpoints import RunCSVLogger
from test_image_data import write_fixture

from conftest import CONF_DIR, compose_train, search_space

IMAGE_DATA = ("mnist", "fashion_mnist", "cifar10", "cifar100", "image_folder")
# recipe/ holds settings a model config pulls in, not a group to choose on the command line
GROUPS = sorted(
    p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in ("hydra", "recipe")
)
OPTIONS = [
    (group, yaml.stem) for group in GROUPS for yaml in sorted((CONF_DIR / group).glob("*.yaml"))
]


def test_required_groups_exist():
    required = {
        "data",
        "model",
        "optimizer",
        "scheduler",
        "trainer",
        "logger",
        "callbacks",
        "goal",
        "paths",
        "debug",
        "experiment",
    }
    assert required <= set(GROUPS)
    assert (CONF_DIR / "hydra" / "default.yaml").is_file()


# data of another problem, composed with a model that solves it
MODEL_FOR_DATA = {
    "adding": "lstm",
    "digits_rows": "lstm",
    "shapes_detection": "faster_rcnn",
    "shapes_segmentation": "segnet",
}
# a goal on a metric the default model does not log, composed with a model that logs it
MODEL_FOR_GOAL = {"gan_quality": "gan", "map": "faster_rcnn", "miou": "segnet", "nelbo": "vae"}
# data read from files in formats their own tests write
FILE_DATA_TESTS = {
    "coco": "tests/test_detection.py",
    "voc_segmentation": "tests/test_segmentation.py",
    "csv_sequences": "tests/test_sequences.py",
}
CLASSIFIERS = ("classification", "sequence_classification")


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(
    group: str, option: str, tmp_path: Path, csv_table: Path, monkeypatch
):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    overrides = [f"{group}={option}"]
    if group == "data" and option in FILE_DATA_TESTS:
        pytest.skip(
            f"data={option} reads files: trained on its fixtures in {FILE_DATA_TESTS[option]}"
        )
    if group == "data" and option in MODEL_FOR_DATA:
        overrides.append(f"model={MODEL_FOR_DATA[option]}")
    if group == "goal" and option in MODEL_FOR_GOAL:
        overrides.append(f"model={MODEL_FOR_GOAL[option]}")
    if (group, option) == ("data", "csv"):
        overrides += [f"data.path={csv_table}", "model=mlp"]
    if group == "data" and option in ("wine", "breast_cancer"):
        overrides.append("model=mlp")
    if group == "data" and option in IMAGE_DATA:
        overrides.append(f"data.root={write_fixture(option, tmp_path / 'imgdata')}")
    cfg = compose_train(tmp_path, overrides)
    if group == "data" and _needs_a_users_file(cfg.data):
        pytest.skip(f"data={option} reads a file of the user's: trained in its own test")
    validate(cfg)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")

    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    batch = next(iter(datamodule.train_dataloader()))
    problem = declared_problem(cfg.model)
    if problem in CLASSIFIERS:
        x, y = batch
        assert task(x).shape == (len(y), cfg.data.num_classes)

    if problem not in CLASSIFIERS:
        # detection, segmentation and generative tasks: built here, trained in their own tests
        return
    optimizer = instantiate(cfg.optimizer)(task.parameter_groups())
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cfg.optimizer.lr)
    factory = instantiate(cfg.scheduler, _convert_="all")["factory"]
    if factory is not None:
        kwargs = {"total_steps": 100} if group == "scheduler" and option == "warmup_cosine" else {}
        assert factory(optimizer, **kwargs) is not None

    callbacks = build_callbacks(cfg)
    trainer = build_trainer(cfg)
    loggers = trainer.loggers
    csv_loggers = (CSVLogger, RunCSVLogger)
    assert any(isinstance(lg, csv_loggers) for lg in loggers), "the CSV logger is always on"
    assert trainer.max_epochs == cfg.trainer.max_epochs
    assert len(callbacks) == len([c for c in cfg.callbacks.values() if c is not None])
    Goal.from_config(cfg.goal)
    _finish(loggers)


def _needs_a_users_file(data) -> bool:
    """A data option whose `path` or `root` must be given and no fixture above gave it."""
    from omegaconf import OmegaConf

    return any(OmegaConf.is_missing(data, key) for key in ("path", "root"))


def _finish(loggers: list) -> None:
    """Close the loggers, W&B's run included, so the next test starts a fresh one."""
    for logger in loggers:
        logger.finalize("success")
    import wandb

    wandb.finish()


def test_every_logger_option_is_offline_capable(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login either
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    cfg = compose_train(tmp_path, ["logger=many"])
    loggers = build_loggers(cfg)
    import os

    assert os.environ["WANDB_MODE"] == "offline"
    assert {type(lg).__name__ for lg in loggers} == {
        "RunCSVLogger",
        "TensorBoardLogger",
        "WandbLogger",
    }
    for logger in loggers:
        logger.finalize("success")


def test_shapes_flow_from_data_to_net(tmp_path: Path):
    cfg = compose_train(tmp_path, ["data=wine", "model=mlp"])
    assert cfg.model.net.in_shape == [13]
    assert cfg.model.net.num_classes == cfg.data.num_classes == 3


def test_weight_decay_skips_biases_and_norms(tmp_path: Path):
    cfg = compose_train(tmp_path, ["optimizer=adamw"])
    task = build_task(cfg)
    groups = task.parameter_groups()
    assert all(p.ndim > 1 for p in groups[0]["params"])
    assert groups[1]["weight_decay"] == 0.0 and all(p.ndim <= 1 for p in groups[1]["params"])
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(
        p.numel() for p in task.parameters()
    )
    assert isinstance(instantiate(cfg.optimizer)(groups), torch.optim.AdamW)


@pytest.mark.parametrize("model", sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml")))
def test_every_models_search_space_has_real_keys(tmp_path: Path, model: str):
    from omegaconf import OmegaConf

    # a model without its own space is searched over the default one (see practicum.cli.entry)
    own = CONF_DIR / "search" / "space" / f"{model}.yaml"
    if own.is_file():
        params = search_space(model)
    else:
        params = OmegaConf.to_container(OmegaConf.load(own.with_name("default.yaml")))
    assert params
    cfg = compose_train(tmp_path, [f"model={model}"])
    for key in params:
        assert OmegaConf.select(cfg, key) is not None, f"search/space/{model}.yaml: {key}"


def test_no_two_search_spaces_say_the_same():
    """A space models share is one file the others name in their defaults."""
    from omegaconf import OmegaConf

    seen: dict[str, str] = {}
    for path in sorted((CONF_DIR / "search" / "space").glob("*.yaml")):
        own = {
            k: v for k, v in OmegaConf.to_container(OmegaConf.load(path)).items() if k != "defaults"
        }
        if own:
            key = repr(sorted(own.items()))
            assert key not in seen, f"{path.name} repeats {seen.get(key)}"
            seen[key] = path.name


@pytest.mark.parametrize("recipe", sorted(p.stem for p in (CONF_DIR / "recipe").glob("*.yaml")))
def test_each_recipe_sets_its_models_defaults(tmp_path: Path, recipe: str):
    from omegaconf import OmegaConf

    settings = OmegaConf.load(CONF_DIR / "recipe" / f"{recipe}.yaml")
    cfg = compose_train(tmp_path, [f"model={recipe}"])
    for key, value in OmegaConf.to_container(settings).items():
        for inner, expected in value.items():
            assert cfg[key][inner] == expected, f"recipe/{recipe}.yaml: {key}.{inner}"
    # command-line overrides still win over a recipe
    cfg = compose_train(tmp_path, [f"model={recipe}", "trainer.max_epochs=2", "optimizer.lr=0.05"])
    assert cfg.trainer.max_epochs == 2 and cfg.optimizer.lr == 0.05


def test_wandb_goes_offline_when_its_server_does_not_answer(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # credentials, but no network to use them on
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    from practicum.run.wandb_runs import offline_without_credentials

    offline_without_credentials()
    import os

    assert os.environ["WANDB_MODE"] == "offline"
    assert "127.0.0.1 does not answer; logging offline" in capsys.readouterr().err


# a YAML that picks a variant of a class another YAML shares: a choice, not a restated default
VARIANTS = {("gru.yaml", "net.cell")}


def _targets(node: object, path: str = ""):
    if isinstance(node, dict):
        if "_target_" in node:
            yield path, node
        for key, value in node.items():
            yield from _targets(value, f"{path}.{key}" if path else key)


@pytest.mark.parametrize("path", sorted((CONF_DIR / "model").glob("*.yaml")), ids=lambda p: p.name)
def test_a_model_yaml_says_its_nets_defaults_as_the_constructor_does(path: Path):
    """The YAML shows each knob (so `model.net.dropout=0.1` needs no `+`), and its value is the
    constructor's default: a default is stated once, in the signature, and never contradicted."""
    import inspect

    from omegaconf import OmegaConf

    from practicum.config.targets import locate as resolve

    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    for where, node in _targets(raw):
        if not node["_target_"].startswith("practicum."):
            continue  # a recipe's settings for torch's own classes (the GAN's Adam betas)
        signature = inspect.signature(resolve(node["_target_"]))
        for key, value in node.items():
            param = signature.parameters.get(key)
            literal = not isinstance(value, dict) and "${" not in str(value)
            if not literal or param is None or param.default is inspect.Parameter.empty:
                continue
            if (path.name, f"{where}.{key}".lstrip(".")) in VARIANTS:
                continue
            default = list(param.default) if isinstance(param.default, tuple) else param.default
            assert value == default, (
                f"{path.name}: {where}.{key}: {value!r} but the default is {default!r}"
            )
