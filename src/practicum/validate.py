"""Check a composed config before anything heavy is imported or any training starts.

Each rule names the key, the bad value, and what to write instead. Rules look keys up by name
anywhere in the relevant group, so a new net or optimizer gets the same checks for free.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from practicum.errors import UserError
from practicum.trust import TRUSTED_TARGETS, is_trusted

Check = Callable[[Any], str | None]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def number(value: Any) -> str | None:
    return None if _number(value) is not None else "must be a number"


def positive(value: Any) -> str | None:
    x = _number(value)
    return None if x is not None and x > 0 and math.isfinite(x) else "must be a number > 0"


def non_negative(value: Any) -> str | None:
    x = _number(value)
    return None if x is not None and x >= 0 and math.isfinite(x) else "must be a number >= 0"


def unit_interval(value: Any) -> str | None:
    """[0, 1): dropout, momentum-like probabilities."""
    x = _number(value)
    return None if x is not None and 0 <= x < 1 else "must be in [0, 1)"


def open_unit_interval(value: Any) -> str | None:
    x = _number(value)
    return None if x is not None and 0 < x < 1 else "must be in (0, 1)"


def positive_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return None if ok else "must be a whole number >= 1"


def optional(check: Check) -> Check:
    """`null` is allowed (the feature is off); anything else must pass `check`."""

    def check_optional(value: Any) -> str | None:
        return None if value is None else check(value)

    return check_optional


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


# (group, key name anywhere below it, check, example of a good value)
RULES: list[tuple[str, str, Check, str]] = [
    ("optimizer", "lr", positive, "1e-3"),
    ("optimizer", "weight_decay", non_negative, "1e-4"),
    ("optimizer", "momentum", unit_interval, "0.9"),
    ("model", "dropout", unit_interval, "0.25"),
    ("model", "label_smoothing", unit_interval, "0.1"),
    ("data", "batch_size", positive_int, "64"),
    ("data", "train_subset", optional(positive_int), "200"),
    ("data", "val_fraction", open_unit_interval, "0.15"),
    ("data", "test_fraction", open_unit_interval, "0.15"),
    ("trainer", "max_epochs", positive_int, "30"),
    ("goal", "mode", one_of("min", "max"), "max"),
    ("goal", "target", number, "0.98"),
    ("callbacks", "patience", positive_int, "10"),
    # sequences and generative models
    ("model", "hidden_size", positive_int, "64"),
    ("model", "num_layers", positive_int, "1"),
    ("model", "latent_dim", positive_int, "16"),
    ("model", "beta", non_negative, "1.0"),
    ("model", "lr", positive, "2e-4"),
    ("model", "grid_size", positive_int, "64"),
    ("model", "reference_size", positive_int, "256"),
    ("data", "num_sequences", positive_int, "2000"),
    ("data", "min_length", positive_int, "20"),
    ("data", "max_length", positive_int, "40"),
]


def _find(node: Any, key: str, path: str) -> Iterator[tuple[str, Any]]:
    """Yield (dotted path, value) for every `key` below `node`, without resolving other keys."""
    if isinstance(node, DictConfig):
        for name in node:
            child_path = f"{path}.{name}" if path else str(name)
            if OmegaConf.is_missing(node, name):
                continue
            child = node._get_node(name)
            if name == key:
                yield child_path, node[name]
            elif isinstance(child, DictConfig | ListConfig):
                yield from _find(child, key, child_path)
    elif isinstance(node, ListConfig):
        for i, child in enumerate(node):
            yield from _find(child, key, f"{path}[{i}]")


def check_values(cfg: DictConfig) -> None:
    for group, key, check, example in RULES:
        if group not in cfg or cfg[group] is None:
            continue
        for path, value in _find(cfg[group], key, group):
            problem = check(value)
            if problem:
                raise UserError(
                    f"{path}={value!r} is invalid: {key} {problem} (for example {path}={example})"
                )


def check_targets(cfg: DictConfig) -> None:
    """Refuse any `_target_` outside practicum's trusted list before Hydra is asked to build it."""
    for group in cfg:
        if group == "hydra" or not isinstance(cfg._get_node(group), DictConfig):
            continue
        for path, target in _find(cfg[group], "_target_", str(group)):
            if not isinstance(target, str) or not is_trusted(target):
                raise UserError(
                    f"{path}={target!r} is not a trusted target, so it will not be run. "
                    f"Targets must match one of: {', '.join(TRUSTED_TARGETS)}. "
                    "To use your own package, add its prefix to TRUSTED_TARGETS in src/practicum/trust.py"
                )


def check_paths(cfg: DictConfig) -> None:
    """Data files named in the config must exist (unless the user asked to download them)."""
    data = cfg.get("data")
    if data is None or data.get("download", False):
        return
    for key in ("path", "root"):
        if key in data and data[key] is not None and not Path(str(data[key])).exists():
            hint = data.get("path_hint", "check the path")
            raise UserError(f"data.{key}={data[key]!r} does not exist: {hint}")


def check_checkpoint(cfg: DictConfig) -> None:
    path = cfg.get("ckpt_path")
    if path is not None and path != "last" and not Path(str(path)).is_file():
        raise UserError(
            f"ckpt_path={path!r} does not exist: pass the path of a .ckpt file written by train.py"
        )


def check_problem_match(cfg: DictConfig) -> None:
    """A classification model on detection data (or the reverse) is a config mistake, not a crash."""
    if "model" not in cfg or "data" not in cfg:
        return
    wanted, given = cfg.model.get("problem"), cfg.data.get("problem")
    if wanted == "generation" and given == "classification":
        # generative models learn the images of labelled image data and ignore the labels
        shape = cfg.data.get("input_shape")
        if shape == "auto" or (isinstance(shape, ListConfig) and len(shape) == 3):
            return
        raise UserError(
            f"model={cfg.model.get('name', '?')} generates images but data={cfg.data.get('name', '?')} "
            f"holds inputs of shape {OmegaConf.to_container(shape) if isinstance(shape, ListConfig) else shape}: "
            "pick image data (data=digits, mnist, fashion_mnist, cifar10, image_folder)"
        )
    if wanted and given and wanted != given:
        raise UserError(
            f"model={cfg.model.get('name', '?')} solves {wanted} but data={cfg.data.get('name', '?')} "
            f"provides {given}: pick a {wanted} dataset (or a {given} model)"
        )


def validate(cfg: DictConfig) -> None:
    """Raise UserError for the first problem found; resolve interpolations as a user would see them."""
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except Exception as exc:  # omegaconf raises many types; all mean a bad value in the config
        raise UserError(f"the config does not resolve: {exc}".splitlines()[0]) from exc
    _require_set(cfg)
    check_targets(cfg)
    check_problem_match(cfg)
    check_values(cfg)
    check_paths(cfg)
    check_checkpoint(cfg)


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
