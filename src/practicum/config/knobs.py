"""The knobs of the methodology, as overrides this run's config accepts.

A net declares which of its parameters change its capacity or its regularization, and how
(`knobs = {"hidden_units": Double(), "dropout": Dropout()}` on the class). The diagnosis names
them in its advice and the autopilot turns them; both get concrete overrides
(`model.net.hidden_units=256`) that compose and validate for this model, never a key it lacks.
The optimizer's learning rate and weight decay, the epoch budget and the data's augmentation are
knobs of every run that has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from omegaconf import DictConfig, ListConfig, OmegaConf

# sane default learning rates per optimizer (the lr a decade grid is centred on)
DEFAULT_LR = {"sgd": 1e-2, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}


@dataclass(frozen=True)
class Knob:
    """How one parameter of a net turns: `up` (more capacity or regularization) and `down`."""

    role: ClassVar[str] = "capacity"

    def up(self, value: Any, factor: int = 2) -> Any:
        """One notch more; a width grows by `factor` (a count by one, whatever the factor)."""
        raise NotImplementedError

    def down(self, value: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Double(Knob):
    """A width (units, channels, latent size): doubled, or each entry of a list doubled."""

    most: int = 4096

    def up(self, value: Any, factor: int = 2) -> Any:
        if isinstance(value, list | tuple):
            return [min(int(v) * factor, self.most) for v in value]
        return min(int(value) * factor, self.most)

    def down(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [max(int(v) // 2, 1) for v in value]
        return max(int(value) // 2, 1)


@dataclass(frozen=True)
class Add(Knob):
    """A count (layers, blocks): one more or one fewer."""

    step: int = 1
    least: int = 1
    most: int = 16

    def up(self, value: Any, factor: int = 2) -> Any:
        return min(int(value) + self.step, self.most)

    def down(self, value: Any) -> Any:
        return max(int(value) - self.step, self.least)


@dataclass(frozen=True)
class Choice(Knob):
    """One of a ladder of sizes (ResNet depth 18, 34, 50): the next rung."""

    ladder: tuple[Any, ...] = ()

    def up(self, value: Any, factor: int = 2) -> Any:
        rung = self.ladder.index(value) if value in self.ladder else -1
        return self.ladder[min(rung + 1, len(self.ladder) - 1)]

    def down(self, value: Any) -> Any:
        rung = self.ladder.index(value) if value in self.ladder else 1
        return self.ladder[max(rung - 1, 0)]


@dataclass(frozen=True)
class Dropout(Knob):
    """A dropout probability: +0.1 up to 0.7, or halved down."""

    role: ClassVar[str] = "regularization"

    def up(self, value: Any, factor: int = 2) -> Any:
        return round(min(float(value or 0.0) + 0.1, 0.7), 2)

    def down(self, value: Any) -> Any:
        return round(float(value or 0.0) / 2, 3)


@dataclass(frozen=True)
class Toggle(Knob):
    """A regularizer that is on or off (batch norm)."""

    role: ClassVar[str] = "regularization"

    def up(self, value: Any, factor: int = 2) -> Any:
        return True

    def down(self, value: Any) -> Any:
        return False


# -- reading a config's knobs -------------------------------------------------------------------


def _net_class(cfg: DictConfig) -> Any:
    from practicum.config.trust import trusted_locate as locate

    net = (cfg.get("model") or {}).get("net")
    if not isinstance(net, DictConfig) or "_target_" not in net:
        return None
    try:
        return locate(str(net._target_))
    except (ImportError, AttributeError):
        return None


def _current(cfg: DictConfig, cls: Any, name: str) -> Any:
    import inspect

    net = cfg.model.net
    if name in net:
        value = net[name]
        return OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
    try:
        default = inspect.signature(cls).parameters[name].default
    except (KeyError, TypeError, ValueError):
        return None
    return None if default is inspect.Parameter.empty else default


def net_knobs(cfg: DictConfig, role: str | None = None) -> dict[str, tuple[Knob, Any]]:
    """`{parameter: (knob, current value)}` the run's net declares, of one role or all."""
    cls = _net_class(cfg)
    declared: dict[str, Knob] = dict(getattr(cls, "knobs", None) or {})
    found = {}
    for name, knob in declared.items():
        if role is None or knob.role == role:
            found[name] = (knob, _current(cfg, cls, name))
    return found


def _override(key: str, value: Any) -> str:
    if isinstance(value, list | tuple):
        return f"{key}=[{','.join(str(v) for v in value)}]"
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    return f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"


def capacity(cfg: DictConfig, direction: str = "up", factor: int = 2) -> list[list[str]]:
    """One override per capacity knob that can still move (width first, then depth); widths
    grow by `factor`."""
    changes = []
    for name, (knob, value) in net_knobs(cfg, "capacity").items():
        if value is None:
            continue
        new = knob.up(value, factor) if direction == "up" else knob.down(value)
        if new != value:
            changes.append([_override(f"model.net.{name}", new)])
    return changes


def regularization(cfg: DictConfig, direction: str = "up") -> list[list[str]]:
    """Changes that add (or remove) regularization: the net's dropout and batch norm, the
    optimizer's weight decay, the data's augmentation."""
    changes = []
    for name, (knob, value) in net_knobs(cfg, "regularization").items():
        new = knob.up(value) if direction == "up" else knob.down(value)
        if new != value and not (isinstance(knob, Toggle) and direction == "down"):
            changes.append([_override(f"model.net.{name}", new)])
    decay = float((cfg.get("optimizer") or {}).get("weight_decay", 0.0) or 0.0)
    if "optimizer" in cfg and "weight_decay" in cfg.optimizer and uses_optimizer_group(cfg):
        if direction == "up":
            changes.append(
                [_override("optimizer.weight_decay", 1e-4 if decay == 0 else decay * 10)]
            )
        elif decay > 0:
            changes.append(
                [_override("optimizer.weight_decay", decay / 10 if decay > 1e-5 else 0.0)]
            )
    augment = (cfg.get("data") or {}).get("augment")
    ladder = ("none", "standard", "strong")
    if augment in ladder:
        rung = ladder.index(augment) + (1 if direction == "up" else -1)
        if 0 <= rung < len(ladder):
            changes.append([f"data.augment={ladder[rung]}"])
    return changes


def uses_optimizer_group(cfg: DictConfig) -> bool:
    """A GAN has an optimizer per player (model.generator_optimizer, ...), not `optimizer`."""
    return "generator_optimizer" not in (cfg.get("model") or {})


def optimizer_name(cfg: DictConfig) -> str:
    target = str((cfg.get("optimizer") or {}).get("_target_", "")).rsplit(".", 1)[-1].lower()
    return target


def lr_grid(cfg: DictConfig, direction: str) -> list[float]:
    """Three learning rates to try after a too-high ("down") or too-low ("up") one: the decade
    below or above a sane default for this optimizer when the current value is far from it, else
    steps of 3x away from the current value. Never centred on the value that failed. In the order
    to try them: the sane default first, or the smallest step away from the current value."""
    lr = float(cfg.optimizer.lr)
    default = DEFAULT_LR.get(optimizer_name(cfg), 1e-3)
    if direction == "down":
        picked = (
            [default, default / 3, default / 10] if lr > 3 * default else [lr / 3, lr / 10, lr / 30]
        )
    else:
        picked = (
            [default, default * 3, default * 10] if lr < default / 3 else [lr * 3, lr * 10, lr * 30]
        )
    return [float(f"{v:.1g}") for v in picked]


def epochs(cfg: DictConfig, factor: int = 2) -> list[str]:
    max_epochs = int(cfg.trainer.max_epochs)
    more = max(max_epochs * factor, max_epochs + 5)
    change = [f"trainer.max_epochs={more}"]
    patience = (cfg.get("callbacks") or {}).get("early_stopping")
    if patience is not None and "patience" in patience:
        change.append(f"callbacks.early_stopping.patience={max(int(patience.patience), more // 4)}")
    return change


def class_weights(cfg: DictConfig) -> list[list[str]]:
    """Weighting the classes by their rarity, for a classifier that does not yet: a majority
    class can meet an accuracy goal on its own."""
    model = cfg.get("model") or {}
    if "class_weights" not in model or model.get("class_weights") == "balanced":
        return []
    return [["model.class_weights=balanced"]]


def describe(changes: Sequence[Sequence[str]]) -> str:
    return ", ".join(f"`{' '.join(change)}`" for change in changes)


def run_changes(
    cfg: DictConfig, task: Any = None, datamodule: Any = None
) -> dict[str, list[list[str]]]:
    """Every change the diagnosis may advise for this run, by remedy, as overrides its config
    accepts: the autopilot applies them, and a test validates each for every model."""
    changes: dict[str, list[list[str]]] = {}
    if uses_optimizer_group(cfg) and "lr" in (cfg.get("optimizer") or {}):
        changes["lr_down"] = [[f"optimizer.lr={v:g}"] for v in lr_grid(cfg, "down")]
        changes["lr_up"] = [[f"optimizer.lr={v:g}"] for v in lr_grid(cfg, "up")]
    kind = getattr(task, "diagnosis_kind", "supervised")
    if kind != "gan" and uses_optimizer_group(cfg):
        changes["range_test"] = [["tune=lr"]]
    # debug=checks runs on the tasks that can be probed (tasks.base.Task) and loader(split) data
    probed = callable(getattr(task, "probe_loss", None))
    if probed and callable(getattr(datamodule, "loader", None)):
        changes["checks"] = [["debug=checks"]]
    stabilize = [["trainer.gradient_clip_val=1.0"]]
    if (cfg.get("scheduler") or {}).get("factory") is not None or "scheduler" in cfg:
        stabilize.append(["scheduler=warmup_cosine"])
    changes["stabilize"] = stabilize
    if "trainer" in cfg and "max_epochs" in cfg.trainer:
        changes["epochs"] = [epochs(cfg)]
    changes["capacity_up"] = capacity(cfg, "up")
    # a net far from fitting its training split: a width x8, or a layer more
    changes["capacity_up_far"] = capacity(cfg, "up", factor=8)
    changes["capacity_down"] = capacity(cfg, "down")
    changes["regularize_up"] = regularization(cfg, "up")
    changes["regularize_down"] = regularization(cfg, "down")
    stopping = (cfg.get("callbacks") or {}).get("early_stopping")
    if stopping is not None and "patience" in stopping and int(stopping.patience) > 1:
        changes["patience_down"] = [
            [f"callbacks.early_stopping.patience={int(stopping.patience) // 2}"]
        ]
    weights = class_weights(cfg)
    if weights:
        changes["class_weights"] = weights
    if "beta" in (cfg.get("model") or {}):
        beta = float(cfg.model.beta)
        changes["collapse"] = [[f"model.beta={beta / 2:g}"], *capacity(cfg, "up")[:1]]
    return changes
