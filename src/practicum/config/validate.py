"""Check a composed config before anything is built or any training starts.

Every mistake is one line that names the key, the bad value, and what to write instead. A rule
applies to the parameter it was written for: the arguments of each `_target_` are checked against
the target's signature and declared ranges (checker.py); the groups practicum owns against the
ranges on their schemas' fields (config.py). Then: targets trusted, model and data of the same
problem kind, files present.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from practicum.config import trust
from practicum.config.checker import check_arguments, check_fields, check_ranges
from practicum.config.goal import Metric, logged_names
from practicum.config.schemas import (
    SCHEMAS,
    EntryConfig,
    SchedulerConfig,
    part_name,
    settings,
    top_level_keys,
)
from practicum.config.targets import target_nodes
from practicum.config.trust import trusted_locate as locate
from practicum.errors import UserError


def validate(cfg: DictConfig) -> None:
    """Raise UserError for the first problem found; resolve interpolations as a user would see them."""
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except Exception as exc:  # omegaconf raises many types; all mean a bad value in the config
        raise UserError(f"the config does not resolve: {exc}".splitlines()[0]) from exc
    _require_groups(cfg)
    _require_set(cfg)
    check_top_level_keys(cfg)
    check_fields(cfg, EntryConfig, known_only=True)
    check_targets(cfg)
    check_problem_match(cfg)
    check_schema_values(cfg)
    check_arguments(cfg)
    check_scheduler(cfg)
    check_epochs(cfg)
    check_data_arguments(cfg)
    check_goal(cfg)
    check_paths(cfg)
    check_checkpoint(cfg)


def check_top_level_keys(cfg: DictConfig) -> None:
    """A key added at the top (`+sed=3`) that no config file or group has is a typo or a leftover."""
    known = top_level_keys()
    for key in cfg:
        if known and str(key) not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.7)
            fix = (
                f"did you mean {close[0]}?"
                if close
                else "remove it, or add it to conf/train.yaml if your code reads it"
            )
            raise UserError(f"{key} is not a key of the config: {fix}")


def check_targets(cfg: DictConfig) -> None:
    """Refuse any `_target_` that trust.py's rules do not name, before anything is built."""
    trust.check_targets(cfg)


# -- the groups practicum owns ---------------------------------------------------------------


def check_schema_values(cfg: DictConfig) -> None:
    """Ranges declared on the fields of config.py's schemas (`metadata=rule(...)`), and the rules
    across fields a schema checks when it is built (`__post_init__`: tune.min_lr < tune.max_lr)."""
    for group, schema in SCHEMAS.items():
        node = cfg.get(group) if group in cfg else None
        if isinstance(node, DictConfig):
            check_ranges(node, group)
            if hasattr(schema, "__post_init__"):
                settings(node, schema, group)


def check_scheduler(cfg: DictConfig) -> None:
    """The keys beside the scheduler's factory, which the task reads (Task.configure_optimizers)."""
    node = cfg.get("scheduler")
    if isinstance(node, DictConfig):
        check_fields(node, SchedulerConfig, "scheduler")


def check_epochs(cfg: DictConfig) -> None:
    """A floor above the ceiling: Lightning stops at max_epochs and ignores min_epochs silently."""
    trainer = cfg.get("trainer")
    if not isinstance(trainer, DictConfig):
        return
    low, high = trainer.get("min_epochs"), trainer.get("max_epochs")
    if isinstance(low, int) and isinstance(high, int) and high >= 1 and low > high:
        raise UserError(
            f"trainer.min_epochs={low} is above trainer.max_epochs={high}, so it cannot hold: "
            f"lower it (for example trainer.min_epochs=1) or raise trainer.max_epochs"
        )


# -- how the parts fit together --------------------------------------------------------------


def declared_problem(node: Mapping[str, Any] | None) -> str | None:
    """The problem kind a model or data node declares on its classes (Task.problem,
    SplitDataModule.problem); a net that needs particular inputs (sequences) refines its task's."""
    if not node or "_target_" not in node:
        return None
    net = node.get("net")
    if isinstance(net, Mapping) and "_target_" in net:
        problem = getattr(locate(str(net["_target_"])), "problem", None)
        if problem:
            return problem
    return getattr(locate(str(node["_target_"])), "problem", None)


def check_problem_match(cfg: DictConfig) -> None:
    """A classification model on detection data (or the reverse) is a config mistake, not a crash."""
    if "model" not in cfg or "data" not in cfg:
        return
    wanted, given = declared_problem(cfg.model), declared_problem(cfg.data)
    model, data = part_name(cfg, "model"), part_name(cfg, "data")
    if wanted == "generation" and given == "classification":
        # generative models learn the images of labelled image data and ignore the labels
        shape = cfg.data.get("input_shape")
        if shape == "auto" or (isinstance(shape, ListConfig) and len(shape) == 3):
            return
        shown = OmegaConf.to_container(shape) if isinstance(shape, ListConfig) else shape
        raise UserError(
            f"model={model} generates images but data={data} holds inputs of shape {shown}: "
            "pick image data (data=digits, mnist, fashion_mnist, cifar10, image_folder)"
        )
    if wanted and given and wanted != given:
        raise UserError(
            f"model={model} solves {wanted} but data={data} provides {given}: "
            f"pick a {wanted} dataset (or a {given} model)"
        )


def check_data_arguments(cfg: DictConfig) -> None:
    """The rules a data module declares across its arguments (SplitDataModule.config_problem),
    such as split fractions that leave a training split."""
    data = cfg.get("data")
    if not isinstance(data, DictConfig) or "_target_" not in data:
        return
    rules = getattr(locate(str(data._target_), "data._target_"), "config_problem", None)
    problem = rules(OmegaConf.to_container(data, resolve=True)) if rules else None
    if problem:
        raise UserError(problem)


def check_goal(cfg: DictConfig) -> None:
    """The goal names a metric the model's task logs during training, in its range and direction;
    a callback or scheduler that monitors a metric names one too."""
    model, goal = cfg.get("model"), cfg.get("goal")
    if not isinstance(model, DictConfig) or "_target_" not in model:
        return
    task = locate(str(model._target_), "model._target_")
    logged = logged_names(getattr(task, "logged_metrics", ()))
    if not logged:
        return
    name = f"model={part_name(cfg, 'model')}"
    if isinstance(goal, DictConfig) and not OmegaConf.is_missing(goal, "metric"):
        metric = _require_logged("goal.metric", str(goal.metric), logged, name)
        if not OmegaConf.is_missing(goal, "target"):
            _check_target(float(goal.target), str(goal.metric), metric)
        if not OmegaConf.is_missing(goal, "mode") and metric.mode not in (None, goal.mode):
            better = "higher" if metric.mode == "max" else "lower"
            raise UserError(
                f"goal.mode={goal.mode} but {goal.metric} is better when {better}: "
                f"use goal.mode={metric.mode}"
            )
    monitors = [("scheduler.monitor", (cfg.get("scheduler") or {}).get("monitor"))]
    for path, node in target_nodes(cfg):
        if path.startswith("callbacks.") and "monitor" in node:
            monitors.append((f"{path}.monitor", node.monitor))
    for path, monitored in monitors:
        # Lightning's LearningRateMonitor logs `lr-<optimizer>`
        if isinstance(monitored, str) and not monitored.startswith("lr-"):
            _require_logged(path, monitored, logged, name)


def _require_logged(path: str, metric: str, logged: dict[str, Metric], model: str) -> Metric:
    if metric in logged:
        return logged[metric]
    close = difflib.get_close_matches(metric, list(logged), n=1, cutoff=0.7)
    names = ", ".join(logged)
    fix = (
        f"did you mean {path}={close[0]}? ({model} logs {names})"
        if close
        else f"use one of {names}"
    )
    raise UserError(f"{path}={metric} is not a metric {model} logs during training: {fix}")


def _check_target(target: float, name: str, metric: Metric) -> None:
    if metric.low <= target <= metric.high:
        return
    example = 0.9 if metric.high == 1 else 0.1
    raise UserError(
        f"goal.target={target:g} is out of the range of {name}, {metric.describe_range()}: "
        f"pick a target in it (for example goal.target={example:g})"
    )


def check_paths(cfg: DictConfig) -> None:
    """Data files named in the config must exist (unless the user asked to download them)."""
    data = cfg.get("data")
    if data is None or data.get("download", False):
        return
    for key in ("path", "root", "val_path", "test_path"):
        if key in data and data[key] is not None and not Path(str(data[key])).exists():
            datamodule = locate(str(data._target_), "data._target_") if "_target_" in data else None
            hint = getattr(datamodule, "path_hint", None)
            args = OmegaConf.to_container(data, resolve=True)
            raise UserError(
                f"data.{key}={data[key]!r} does not exist: {hint(args) if hint else 'check the path'}"
            )


def check_checkpoint(cfg: DictConfig) -> None:
    path = cfg.get("ckpt_path")
    if path is not None and path != "last" and not Path(str(path)).is_file():
        raise UserError(
            f"ckpt_path={path!r} does not exist: pass the path of a .ckpt file written by train.py"
        )


# the groups every run builds from: deleting one (`~model`) leaves nothing to build
REQUIRED_GROUPS = ("data", "model", "optimizer", "trainer", "goal", "paths")


def _require_groups(cfg: DictConfig) -> None:
    """A training config (it names its `parts`) has every group a run builds from."""
    if "parts" not in cfg:
        return  # eval.py's and predict.py's own configs: the run's come from its checkpoint
    for group in REQUIRED_GROUPS:
        if cfg.get(group) is None:
            raise UserError(
                f"{group} is missing (deleted with ~{group}, or set to null): every run needs "
                f"one; pick an option with {group}=<name> (the files of conf/{group}/)"
            )


def _require_set(cfg: DictConfig) -> None:
    for group in ("data", "model", "optimizer", "trainer", "goal"):
        node = cfg.get(group)
        if node is None:
            continue
        for key in node:
            if OmegaConf.is_missing(node, key):
                raise UserError(
                    f"{group}.{key} must be set: add {group}.{key}=... to the command line"
                )
