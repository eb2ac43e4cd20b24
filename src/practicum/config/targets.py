"""The `_target_`s of a config: the one walker that finds them and the one importer that follows
a dotted name to its object. The checker and trust both read a config through these."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from practicum.errors import UserError


def _skipped(node: Any, key: Any) -> bool:
    """A missing value or an interpolation: checked where the value it points to is set."""
    is_config = isinstance(node, DictConfig | ListConfig)
    return is_config and (OmegaConf.is_missing(node, key) or OmegaConf.is_interpolation(node, key))


def target_nodes(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, node) of every node with a `_target_` in `node` (a config, a mapping or a
    list), outside Hydra's own settings."""
    if isinstance(node, DictConfig | Mapping):
        if "_target_" in node and not _skipped(node, "_target_"):
            yield path, node
        for key in node:
            if _skipped(node, key) or (key == "hydra" and not path):
                continue
            yield from target_nodes(node[key], f"{path}.{key}" if path else str(key))
    elif isinstance(node, ListConfig | list | tuple):
        for i in range(len(node)):
            if not _skipped(node, i):
                yield from target_nodes(node[i], f"{path}[{i}]")


def locate(target: str, where: str = "_target_") -> Any:
    """The object a dotted `_target_` names: the longest importable module, then attributes. A
    name that does not exist, or a module whose import fails, is one UserError line. A name a
    config gives goes through trust.trusted_locate, which refuses it before anything is
    imported when it is outside the trusted packages."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        module_name = ".".join(parts[:i])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # this prefix is not a module: try a shorter one
            raise UserError(f"{where}={target!r} could not be imported ({exc})") from exc
        except UserError:
            raise
        except Exception as exc:  # importing the module ran code that failed
            raise UserError(
                f"{where}={target!r} could not be imported ({type(exc).__name__})"
            ) from exc
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    raise UserError(f"{where}={target!r} does not exist: check the module and the name")
