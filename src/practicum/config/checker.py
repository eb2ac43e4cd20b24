"""The one checker of a config node: against the signature of the `_target_` it builds
(`check_arguments`), or against the schema of a group practicum owns (`check_ranges`,
`check_fields`). Each is read as a list of parameters, each with a type hint, a default and a
range (constraints.py), and a value that does not fit is one line, with an example value.

Each key of a target node must be a parameter of the target (through `**kwargs` to its base classes); its value
must fit the parameter's type hint and the range its annotation declares
(`hidden_units: Annotated[int, PositiveInt]`, see constraints.py). Targets practicum does not own
(torch optimizers, Lightning's Trainer and callbacks) get the ranges of FOREIGN_RULES instead,
keyed by the class that declares the parameter. A mistake is one UserError line.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from practicum.config.constraints import (
    Batches,
    Constraint,
    Fraction,
    NonNegative,
    NonNegativeInt,
    OpenFraction,
    Positive,
    PositiveInt,
)
from practicum.config.targets import target_nodes
from practicum.config.trust import trusted_locate as locate
from practicum.errors import UserError

# (class that declares the parameter, parameter, range): for targets whose source is not ours
FOREIGN_RULES: list[tuple[str, str, Constraint]] = [
    ("torch.optim.Optimizer", "lr", Positive),
    ("torch.optim.Optimizer", "weight_decay", NonNegative),
    ("torch.optim.Optimizer", "momentum", Fraction),
    ("lightning.pytorch.Trainer", "max_epochs", PositiveInt),
    # values Lightning accepts silently: a negative clip clips nothing, a validation every 0
    # epochs divides by zero after the first epoch
    (
        "lightning.pytorch.Trainer",
        "gradient_clip_val",
        dataclasses.replace(NonNegative, example="1.0"),
    ),
    ("lightning.pytorch.Trainer", "check_val_every_n_epoch", PositiveInt),
    ("lightning.pytorch.Trainer", "log_every_n_steps", NonNegativeInt),
    ("lightning.pytorch.Trainer", "accumulate_grad_batches", PositiveInt),
    ("lightning.pytorch.Trainer", "min_epochs", NonNegativeInt),
    # 0 batches: an interval of 0 steps divides by zero; no training or validation batches
    # leave nothing to train or no goal metric, no test batches no test result
    ("lightning.pytorch.Trainer", "val_check_interval", Batches),
    ("lightning.pytorch.Trainer", "limit_train_batches", Batches),
    ("lightning.pytorch.Trainer", "limit_val_batches", Batches),
    ("lightning.pytorch.Trainer", "limit_test_batches", Batches),
    ("lightning.pytorch.callbacks.RichProgressBar", "refresh_rate", NonNegativeInt),
    ("lightning.pytorch.callbacks.TQDMProgressBar", "refresh_rate", NonNegativeInt),
    ("lightning.pytorch.callbacks.EarlyStopping", "patience", PositiveInt),
    # values torch accepts silently that make no schedule (a step of -2 epochs, a decay of 0)
    ("torch.optim.lr_scheduler.StepLR", "step_size", PositiveInt),
    ("torch.optim.lr_scheduler.StepLR", "gamma", Positive),
    ("torch.optim.lr_scheduler.MultiStepLR", "gamma", Positive),
    ("torch.optim.lr_scheduler.ExponentialLR", "gamma", Positive),
    ("torch.optim.lr_scheduler.CosineAnnealingLR", "T_max", PositiveInt),
    ("torch.optim.lr_scheduler.CosineAnnealingLR", "eta_min", NonNegative),
    ("torch.optim.lr_scheduler.ReduceLROnPlateau", "factor", OpenFraction),
    ("torch.optim.lr_scheduler.ReduceLROnPlateau", "patience", NonNegativeInt),
]
# `${name:arguments}`: a resolver's call, not a reference to another key
RESOLVER_CALL = re.compile(r"^\$\{[A-Za-z_][\w.]*:.*\}$", re.DOTALL)
# keys of a `_target_` node that Hydra reads itself
HYDRA_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")


@dataclasses.dataclass
class Parameter:
    name: str
    hint: Any  # the annotation, evaluated; Any when unknown
    default: Any  # inspect.Parameter.empty when required
    owner: Any  # the class or function that declares it


def parameters(target: Any) -> tuple[dict[str, Parameter], bool]:
    """A target's keyword parameters, following `**kwargs` up the base classes; and whether the
    set is open (some `**kwargs` reach code whose parameters cannot be listed)."""
    found: dict[str, Parameter] = {}
    if inspect.isclass(target):
        functions = [
            (k, k.__dict__["__init__"]) for k in target.__mro__ if "__init__" in k.__dict__
        ]
    else:
        functions = [(target, target)]
    for owner, function in functions:
        if owner is object:
            break
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return found, True
        hints = _hints(function)
        for name, param in signature.parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or name == "self":
                continue
            found.setdefault(name, Parameter(name, hints.get(name, Any), param.default, owner))
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            return found, False
    return found, True


def _hints(function: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(inspect.unwrap(function), include_extras=True)
    except Exception:  # an annotation that cannot be evaluated here: no type checks for it
        return {}


def check_arguments(cfg: DictConfig) -> None:
    for path, node in target_nodes(cfg):
        target = locate(str(node._target_), f"{path}._target_")
        params, open_set = parameters(target)
        for key in node:
            key = str(key)
            if key in HYDRA_KEYS:
                continue
            if key not in params:
                if open_set:
                    continue
                raise UserError(
                    f"{path}.{key} is not an argument of {node._target_}: "
                    + did_you_mean(path, key, settable(params, node))
                )
            if OmegaConf.is_missing(node, key):
                continue  # _require_set's
            if OmegaConf.is_interpolation(node, key) and not resolver_only(node, key):
                continue  # a reference to another key: checked where that key is set
            value = node[key]  # a resolver's value (${oc.decode:...}) is checked as resolved
            if isinstance(value, DictConfig) and "_target_" in value:
                continue  # built into an object; checked as a target of its own
            if isinstance(value, DictConfig | ListConfig):
                value = OmegaConf.to_container(value, resolve=True)
            problem = _argument_problem(target, params[key], value)
            if problem:
                rule, example = problem
                raise invalid(f"{path}.{key}", key, value, rule, example)


def settable(params: Mapping[str, Parameter], node: DictConfig) -> list[str]:
    """The parameters a config may set: those it sets and those with a default (the others, such
    as an optimizer's `params`, are passed by the code that calls the target)."""
    return [
        name
        for name, param in params.items()
        if name in node or param.default is not inspect.Parameter.empty
    ]


def did_you_mean(path: str, key: str, valid: Sequence[str]) -> str:
    """The fix for an unknown key: the closest valid one, else the list of them."""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean {path + '.' if path else ''}{close[0]}?"
    return f"use one of {', '.join(valid)}"


def _argument_problem(target: Any, param: Parameter, value: Any) -> tuple[str, Any] | None:
    """(what the value must be, a good example) when `value` does not fit `param`."""
    owned = str(getattr(param.owner, "__module__", "")).startswith("practicum.")
    constraints = list(_constraints(param.hint)) if owned else []
    constraints += [
        c for base, key, c in FOREIGN_RULES if key == param.name and _is_a(target, base)
    ]
    if owned and not fits(value, param.hint):
        # a declared range's example shows a value of the right type where the default cannot
        declared = constraints[0] if constraints else None
        return f"must be {describe_type(param.hint)}", example_value(
            param.default, param.hint, declared
        )
    for constraint in constraints:
        rule = constraint.problem(value)
        if rule:
            return rule, example_value(param.default, param.hint, constraint)
    return None


def example_value(default: Any, hint: Any, constraint: Constraint | None = None) -> Any:
    """The value a message suggests: the declared default when it fits the type and the range,
    else the range's own example (None: no example)."""
    declared = default is not inspect.Parameter.empty and default is not MISSING
    good = declared and default is not None and _plain(default) and fits(default, hint)
    if good and (constraint is None or constraint.holds(default)):
        return default
    return constraint.example if constraint is not None else None


def _is_a(target: Any, dotted: str) -> bool:
    module, _, name = dotted.rpartition(".")
    if not inspect.isclass(target):
        return False
    try:
        base = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return issubclass(target, base)


def _constraints(hint: Any) -> Iterator[Constraint]:
    if typing.get_origin(hint) is typing.Annotated:
        yield from (m for m in hint.__metadata__ if isinstance(m, Constraint))
    for arg in typing.get_args(hint):
        if not isinstance(arg, Constraint):
            yield from _constraints(arg)


def fits(value: Any, hint: Any) -> bool:
    """Whether a config value can be passed where `hint` is declared; unknown hints accept anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if origin is typing.Annotated:
        return fits(value, args[0])
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None) or hint is None:
        return value is None
    if value is inspect.Parameter.empty:
        return False
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    container = origin or hint
    if container in (list, tuple, Sequence) or container is typing.Sequence:
        if not isinstance(value, list | tuple):
            return False
        items = [a for a in args if a is not Ellipsis]
        return len(items) != 1 or all(fits(v, items[0]) for v in value)
    if container in (dict, Mapping):
        return isinstance(value, dict)
    return True


def describe_type(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return describe_type(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(describe_type(arg) for arg in args))
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    if hint in names:
        return names[hint]
    if hint is type(None):
        return "null"
    if (origin or hint) in (list, tuple, Sequence, typing.Sequence):
        return "a list"
    if (origin or hint) in (dict, Mapping):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _plain(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def _render(value: Any) -> str:
    """A value as one writes it on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_render(v) for v in value) + "]"
    return str(value)


def invalid(path: str, key: str, value: Any, rule: str, example: Any) -> UserError:
    """The one line of a value that does not fit: `path=value is invalid: key rule (for example ...)`."""
    hint = (
        f" (for example {path}={_render(example)})"
        if _plain(example) and example is not None
        else ""
    )
    return UserError(f"{path}={value!r} is invalid: {key} {rule}{hint}")


def resolver_only(node: DictConfig, key: Any) -> bool:
    """The value is a resolver call whose arguments name no other key (`${oc.decode:"-1"}`,
    `${oc.env:LR}`): nothing else checks it, so it is resolved and checked here."""
    raw = str(OmegaConf.to_container(node, resolve=False)[key])  # the text as written
    return bool(RESOLVER_CALL.match(raw)) and "${" not in raw[2:]


def check_ranges(node: DictConfig, path: str) -> None:
    """The ranges declared on a schema node's fields (`metadata=rule(...)`), nested nodes too."""
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        for key in node:  # a mapping of schema nodes (study.space)
            child = None if OmegaConf.is_interpolation(node, key) else node[key]
            if isinstance(child, DictConfig):
                check_ranges(child, f"{path}.{key}")
        return
    names = [f.name for f in dataclasses.fields(schema)]
    for key in node:
        if key not in names:
            raise UserError(f"{path}.{key} is not a setting: {did_you_mean(path, str(key), names)}")
    for field_ in dataclasses.fields(schema):
        name = field_.name
        if OmegaConf.is_missing(node, name) or OmegaConf.is_interpolation(node, name):
            continue
        value, constraint = node[name], field_.metadata.get("constraint")
        if isinstance(value, DictConfig):
            check_ranges(value, f"{path}.{name}")
        elif isinstance(constraint, Constraint) and constraint.problem(value):
            example = example_value(field_.default, field_.type, constraint)
            raise invalid(f"{path}.{name}", name, value, constraint.rule, example)


def check_fields(node: DictConfig, schema: type, path: str = "", known_only: bool = False) -> None:
    """The keys of a plain (unstructured) node against `schema`'s fields: each one a field (unless
    `known_only`: then other keys are skipped), of the field's type, in its range; set if required."""
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    prefix = f"{path}." if path else ""
    for key in node:
        key = str(key)
        if key not in fields:
            if known_only:
                continue
            raise UserError(
                f"{prefix}{key} is not a setting: {did_you_mean(path, key, list(fields))}"
            )
        if OmegaConf.is_missing(node, key):
            raise UserError(f"{prefix}{key} must be set: add {prefix}{key}=... to the command line")
        value = node[key]
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        field_ = fields[key]
        constraint = field_.metadata.get("constraint")
        if not fits(value, hints[key]):
            rule_text = f"must be {describe_type(hints[key])}"
        elif isinstance(constraint, Constraint) and constraint.problem(value):
            rule_text = constraint.rule
        else:
            continue
        constraint = constraint if isinstance(constraint, Constraint) else None
        example = example_value(field_.default, hints[key], constraint)
        raise invalid(f"{prefix}{key}", key, value, rule_text, example)
