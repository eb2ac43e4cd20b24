"""Check a composed config before anything is built or any training starts.

Every mistake is one line that names the key, the bad value, and what to write instead. A rule
applies to the parameter it was written for: the arguments of each `_target_` are checked against
the target's signature and declared ranges (arguments.py); the groups practicum owns against the
ranges on their schemas' fields (config.py). Then: targets trusted, model and data of the same
problem kind, files present.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from practicum.arguments import check_arguments, locate, target_nodes
from practicum.config import SCHEMAS, check_ranges, part_name
from practicum.errors import UserError
from practicum.trust import TRUSTED_TARGETS, is_trusted


def validate(cfg: DictConfig) -> None:
    """Raise UserError for the first problem found; resolve interpolations as a user would see them."""
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except Exception as exc:  # omegaconf raises many types; all mean a bad value in the config
        raise UserError(f"the config does not resolve: {exc}".splitlines()[0]) from exc
    _require_set(cfg)
    check_targets(cfg)
    check_problem_match(cfg)
    check_schema_values(cfg)
    check_arguments(cfg)
    check_paths(cfg)
    check_checkpoint(cfg)


def check_targets(cfg: DictConfig) -> None:
    """Refuse any `_target_` outside practicum's trusted list before Hydra is asked to build it."""
    for path, node in target_nodes(cfg):
        target = node._target_
        if not isinstance(target, str) or not is_trusted(target):
            raise UserError(
                f"{path}._target_={target!r} is not a trusted target, so it will not be run. "
                f"Targets must match one of: {', '.join(TRUSTED_TARGETS)}. "
                "To use your own package, add its prefix to TRUSTED_TARGETS in src/practicum/trust.py"
            )


# -- the groups practicum owns ---------------------------------------------------------------


def check_schema_values(cfg: DictConfig) -> None:
    """Ranges declared on the fields of config.py's schemas (`metadata=rule(...)`)."""
    for group in SCHEMAS:
        node = cfg.get(group) if group in cfg else None
        if isinstance(node, DictConfig):
            check_ranges(node, group)


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


def check_paths(cfg: DictConfig) -> None:
    """Data files named in the config must exist (unless the user asked to download them)."""
    data = cfg.get("data")
    if data is None or data.get("download", False):
        return
    for key in ("path", "root"):
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
