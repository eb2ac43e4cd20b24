"""What a config may build: the one list of rules every `_target_` is checked against.

Hydra 1.4 refuses a `_target_` that trusted code did not whitelist; practicum narrows that further.
A target is imported, followed to the object it really is (`torch.nn.functional.torch.save` is
`torch.serialization.save`), and trusted only if a rule names that object's real module and kind:
an optimizer class under `torch.optim`, a Lightning callback under `lightning.pytorch.callbacks`,
a net under `practicum.nets`. A module, a function no rule names, or a class of another kind is
refused, so no config, override or checkpoint can reach a function that writes files or opens the
network (`torchvision.datasets.utils.extract_archive`, `download_url`, `os.system`).

The rules live in code on purpose, never in config: a config (or a checkpoint's stored config)
cannot extend its own trust. To build classes of your own package, add a rule such as
`Rule("my_project.nets", "torch.nn.Module")`, or, without editing the project, name the package in
the environment of the command: `PRACTICUM_TRUST=my_project python train.py ...` trusts the classes
of `my_project` that are nets, tasks, data modules, callbacks, loggers, optimizers, schedulers or
metrics (never its functions).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from dataclasses import dataclass
from typing import Any

from practicum.config.targets import locate, target_nodes
from practicum.errors import UserError


@dataclass(frozen=True)
class Rule:
    """Objects defined in `module` (or a module below it) that are `kind`: a base class they must
    subclass (dotted name), "class" for any class, or "function:<name>" for that one function."""

    module: str
    kind: str

    def allows(self, obj: Any) -> bool:
        home = getattr(obj, "__module__", None) or ""
        if home != self.module and not home.startswith(self.module + "."):
            return False
        if self.kind.startswith("function:"):
            return inspect.isfunction(obj) and obj.__name__ == self.kind.split(":", 1)[1]
        if not inspect.isclass(obj):
            return False
        return self.kind == "class" or issubclass(obj, _import(self.kind))

    @property
    def pattern(self) -> str:
        """The same rule as a pattern for Hydra's own execution whitelist (checked after ours)."""
        if self.kind.startswith("function:"):
            return f"{self.module}.{self.kind.split(':', 1)[1]}"
        return f"{self.module}.*"


RULES: tuple[Rule, ...] = (
    # practicum's own parts
    Rule("practicum.nets", "torch.nn.Module"),
    Rule("practicum.nets.detectors", "function:faster_rcnn"),
    Rule("practicum.nets.detectors", "function:retinanet"),
    Rule("practicum.tasks", "lightning.pytorch.LightningModule"),
    Rule("practicum.tasks.schedules", "function:warmup_cosine"),
    Rule("practicum.data", "lightning.pytorch.LightningDataModule"),
    Rule("practicum.methodology.callbacks", "lightning.pytorch.Callback"),
    Rule("practicum.platform.gpu", "lightning.pytorch.Callback"),
    Rule("practicum.run.step_checkpoints", "lightning.pytorch.Callback"),
    Rule("practicum.run.checkpoints", "lightning.pytorch.loggers.Logger"),
    Rule("practicum.search", "hydra.experimental.callback.Callback"),
    Rule("practicum.cli.before_run", "hydra.experimental.callback.Callback"),
    # layers, optimizers, schedules, metrics and transforms
    Rule("torch.nn", "torch.nn.Module"),
    Rule("torch.optim", "torch.optim.Optimizer"),
    Rule("torch.optim.lr_scheduler", "torch.optim.lr_scheduler.LRScheduler"),
    Rule("torchvision.models", "torch.nn.Module"),
    Rule("torchvision.ops", "torch.nn.Module"),
    Rule("torchvision.transforms", "class"),
    Rule("torchmetrics", "torchmetrics.Metric"),
    # Lightning's trainer and the parts it takes
    Rule("lightning.pytorch.trainer", "lightning.pytorch.Trainer"),
    Rule("lightning.pytorch.callbacks", "lightning.pytorch.Callback"),
    Rule("lightning.pytorch.loggers", "lightning.pytorch.loggers.Logger"),
    Rule("lightning.pytorch.profilers", "lightning.pytorch.profilers.Profiler"),
    Rule("lightning.pytorch.strategies", "lightning.pytorch.strategies.Strategy"),
    Rule("lightning.pytorch.plugins", "class"),
    Rule("lightning.fabric.plugins", "class"),
)
# what Hydra's execution whitelist is given: the same rules as name patterns. Hydra matches both the
# name as written and the one it resolves to, so a public alias outside its real module is listed too.
PUBLIC_ALIASES = ("lightning.pytorch.Trainer",)
TRUSTED_TARGETS: tuple[str, ...] = (*dict.fromkeys(rule.pattern for rule in RULES), *PUBLIC_ALIASES)


TRUST_VARIABLE = "PRACTICUM_TRUST"
# what a package named in PRACTICUM_TRUST may have built from configs: classes of these kinds
OWN_KINDS = (
    "torch.nn.Module",
    "lightning.pytorch.LightningModule",
    "lightning.pytorch.LightningDataModule",
    "lightning.pytorch.Callback",
    "lightning.pytorch.loggers.Logger",
    "torch.optim.Optimizer",
    "torch.optim.lr_scheduler.LRScheduler",
    "torchmetrics.Metric",
)
PACKAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def user_rules() -> tuple[Rule, ...]:
    """Rules for the packages named in PRACTICUM_TRUST (comma-separated), read from the
    environment of this process: never from a config or a checkpoint."""
    names = [name.strip() for name in os.environ.get(TRUST_VARIABLE, "").split(",") if name.strip()]
    for name in names:
        if not PACKAGE.match(name) or name.split(".")[0] in ("os", "sys", "subprocess", "builtins"):
            raise UserError(
                f"{TRUST_VARIABLE}={os.environ[TRUST_VARIABLE]!r}: {name!r} is not a package of "
                "your own: name packages, comma-separated (PRACTICUM_TRUST=my_project)"
            )
    return tuple(Rule(name, kind) for name in names for kind in OWN_KINDS)


def active_rules() -> tuple[Rule, ...]:
    return (*RULES, *user_rules())


def hydra_whitelist() -> tuple[str, ...]:
    """Hydra's execution whitelist for this process: practicum's rules and PRACTICUM_TRUST's."""
    return (*TRUSTED_TARGETS, *dict.fromkeys(rule.pattern for rule in user_rules()))


def _import(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def real_name(obj: Any) -> str:
    """Where an object is defined, whatever alias reached it."""
    if inspect.ismodule(obj):
        return obj.__name__
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', repr(obj)))}"


def _refusal(where: str, shown: str, what: str) -> UserError:
    return UserError(
        f"{where}={shown} is not a trusted target, so it will not be run: {what}. "
        "Configs build nets, tasks, data modules, optimizers, schedulers, metrics, transforms and "
        "Lightning parts; for your own classes run with PRACTICUM_TRUST=<your package>, or add a Rule "
        "to RULES in src/practicum/config/trust.py"
    )


def check_name(target: str, where: str = "_target_") -> None:
    """Refuse, before anything is imported, a dotted name outside the trusted packages (those of
    RULES, and PRACTICUM_TRUST's): importing a module runs its code, so `this.s` must not even be
    imported to be refused. Inside them, the object it names is then checked by the rules."""
    packages = {rule.module.split(".")[0] for rule in RULES}  # practicum, torch, lightning, ...
    packages |= {rule.module for rule in user_rules()}
    if not any(target == p or target.startswith(p + ".") for p in packages):
        raise _refusal(where, repr(target), "it is outside the packages configs may build from")


def trusted_locate(target: str, where: str = "_target_") -> Any:
    """The object a config's dotted name names, imported only when it is inside the trusted
    packages (check_name); what it is, the rules decide (check_target)."""
    check_name(target, where)
    return locate(target, where)


def check_target(target: Any, where: str = "_target_") -> Any:
    """The object `target` names, if a rule trusts it; else one UserError line."""
    if not isinstance(target, str) or not target:
        raise UserError(f"{where}={target!r} is not a dotted name of a class or function")
    obj = trusted_locate(target, where)
    if not any(rule.allows(obj) for rule in active_rules()):
        real = real_name(obj)
        alias = "" if real == target else f" (it is {real})"
        what = "a module" if inspect.ismodule(obj) else "not a class or function configs may build"
        raise _refusal(where, f"{target!r}{alias}", f"it is {what}")
    return obj


def check_targets(node: Any, path: str = "") -> None:
    """Every `_target_` in `node` trusted, or one UserError line for the first that is not."""
    for where, found in target_nodes(node, path):
        check_target(found["_target_"], f"{where}._target_" if where else "_target_")


def instantiate(node: Any, **kwargs: Any) -> Any:
    """Hydra's instantiate, after practicum's rules: the only place objects are built from config."""
    from hydra.utils import instantiate as hydra_instantiate

    check_targets(node)
    for key, value in kwargs.items():
        check_targets(value, key)
    return hydra_instantiate(node, _execution_whitelist_=hydra_whitelist(), **kwargs)
