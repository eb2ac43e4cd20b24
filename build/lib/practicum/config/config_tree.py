"""The run's config on the terminal: one screen when a run starts, the whole tree in config_tree.txt.

The screen says what a reader needs before training: the parts (the choice made in each config
group), the keys that differ from those parts' defaults with their resolved values, and where the
run writes. Inside a sweep a trial prints none of it (Hydra's launch line already names the
trial); `verbose=true` prints the whole tree as well.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from practicum.config.schemas import part_name
from practicum.platform.files import write_text
from practicum.platform.ranks import is_rank_zero

# the groups a reader looks for first; the rest follow in config order
FIRST = ("data", "model", "optimizer", "scheduler", "trainer", "goal", "callbacks", "logger")
# groups that place files rather than change the run; shown only when swapped
QUIET_GROUPS = ("paths",)
# the shapes the data hands to the net; `auto` in the config, filled in once the data is loaded
SHAPE_KEYS = ("num_classes", "input_shape")


def config_tree(cfg: DictConfig) -> Tree:
    resolved = OmegaConf.to_container(cfg, resolve=True)
    tree = Tree(f"[bold]config[/bold] ({cfg.get('task_name', 'run')})", guide_style="dim")
    keys = [k for k in FIRST if k in resolved] + [k for k in resolved if k not in FIRST]
    for key in keys:
        _add(tree, key, resolved[key])
    return tree


def _add(parent: Tree, key: str, value: Any) -> None:
    if isinstance(value, dict) and value:
        branch = parent.add(f"[bold cyan]{key}[/bold cyan]")
        for inner, inner_value in value.items():
            _add(branch, str(inner), inner_value)
    else:
        parent.add(
            f"{key}: [green]{value!r}[/green]" if isinstance(value, str) else f"{key}: {value}"
        )


def show_config(cfg: DictConfig, output_dir: Path, console: Console) -> Path | None:
    """Print the first screen (the whole tree with `verbose=true`; nothing in a sweep's trial) and
    write the whole tree to <run dir>/config_tree.txt. Rank zero only under DDP."""
    if not is_rank_zero():
        return None
    tree = config_tree(cfg)
    path = output_dir / "config_tree.txt"
    text = io.StringIO()
    Console(file=text, width=120, color_system=None).print(tree)
    write_text(path, text.getvalue())
    verbose = bool(cfg.get("verbose", False))
    if verbose:
        console.print(tree)
    if verbose or _hydra_mode() != "MULTIRUN":
        console.print(first_screen(cfg, output_dir))
    return path


def first_screen(cfg: DictConfig, output_dir: Path) -> Table:
    """Parts, shapes, goal, the keys changed from the defaults, and the run directory."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("parts", " ".join(f"{g}={c}" for g, c in run_parts(cfg).items()))
    data = cfg.get("data") or {}
    shapes = {key: data.get(key) for key in SHAPE_KEYS if data.get(key) is not None}
    if shapes:
        grid.add_row("shapes", " ".join(f"{k}={_format(_resolved(data, k))}" for k in shapes))
    goal = cfg.get("goal") or {}
    if goal.get("metric"):
        sign = ">=" if goal.get("mode") == "max" else "<="
        grid.add_row("goal", f"{goal.metric} {sign} {_format(goal.get('target'))}")
    changed = changed_keys(cfg)
    if changed is not None:
        shown = " ".join(k if k[0] == "~" else f"{k}={_format(v)}" for k, v in changed.items())
        grid.add_row("changed", shown or "nothing: the parts' defaults")
    grid.add_row("run dir", str(output_dir))
    verbose = "" if cfg.get("verbose") else " (verbose=true prints it here)"
    grid.add_row("config", f"config_tree.txt in the run dir{verbose}")
    return grid


def run_parts(cfg: DictConfig) -> dict[str, str]:
    """The option chosen in each config group (`data=digits model=cnn ...`), in reading order."""
    choices = _hydra_choices()
    if choices is None:  # composed outside a Hydra app: the run's `parts:` node
        choices = {g: part_name(cfg, g) for g in cfg.get("parts") or {}}
    parts = {g: str(c) for g, c in choices.items() if c is not None and g not in QUIET_GROUPS}
    order = [g for g in FIRST if g in parts] + [g for g in parts if g not in FIRST]
    return {group: parts[group] for group in order}


def changed_keys(cfg: DictConfig) -> dict[str, Any] | None:
    """Keys whose value differs from the default config of the same parts, with resolved values.

    The defaults are composed with this run's group choices, so a swapped group is a part, not a
    list of keys; what remains are the command line's and the experiment file's key overrides.
    Keys left as interpolations are compared unresolved, so `goal.target=0.9` is one key, not
    every key that refers to it. None when this run was not composed by a Hydra app.
    """
    if _only_parts_picked():
        return {}  # nothing to compare: the plain `python train.py model=mlp` skips composing
    defaults = _default_config()
    if defaults is None:
        return None
    return diff_configs(cfg, defaults)


def diff_configs(cfg: DictConfig, defaults: DictConfig) -> dict[str, Any]:
    """`{"optimizer.lr": 0.01, "~callbacks.lr_monitor": None}`: set or removed relative to `defaults`."""
    ours, base = _leaves(cfg), _leaves(defaults)
    changed: dict[str, Any] = {}
    for key, value in ours.items():
        if key in base and (base[key] == value or _filled_auto(key, base[key])):
            continue
        changed[key] = _resolved(cfg, key)
    removed = {_removed_root(key, ours, defaults) for key in base if key not in ours}
    changed.update({f"~{key}": None for key in sorted(removed - {None})})
    return changed


def _leaves(cfg: DictConfig) -> dict[str, Any]:
    """Every leaf as `dotted.key: unresolved value` (a list is one leaf)."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return flat


def _filled_auto(key: str, default: Any) -> bool:
    # the run filled these in from the data; the screen's `shapes` row shows them
    return default == "auto" and key.split(".")[-1] in SHAPE_KEYS


def _removed_root(key: str, ours: dict[str, Any], defaults: DictConfig) -> str | None:
    """The shortest prefix of a removed key that is gone from this run (None if it became a leaf)."""
    parts = key.split(".")
    for n in range(1, len(parts) + 1):
        prefix = ".".join(parts[:n])
        if prefix in ours:
            return None  # replaced by a leaf, e.g. `callbacks.lr_monitor=null`: shown as set
        if not any(k.startswith(prefix + ".") for k in ours):
            return prefix
    return key


def _resolved(node: Any, key: str) -> Any:
    try:
        value = OmegaConf.select(node, key, throw_on_resolution_failure=True)
    except Exception:  # an interpolation only the running app can resolve
        return OmegaConf.select(node, key, throw_on_resolution_failure=False)
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _format(value: Any) -> str:
    """A value as it would be typed on the command line: no spaces, so a line wraps between keys."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_format(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_format(v)}" for k, v in value.items()) + "}"
    text = str(value)
    return f"'{text}'" if not text or any(c in text for c in " ,=[]{}'\"") else text


def _hydra_mode() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    return getattr(HydraConfig.get().mode, "name", None) if HydraConfig.initialized() else None


def _hydra_choices() -> dict[str, Any] | None:
    """Hydra's choice per config group, without Hydra's own groups; None outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    choices = OmegaConf.to_container(HydraConfig.get().runtime.choices)
    return {g: c for g, c in choices.items() if g.split("/")[0] != "hydra" and "@hydra" not in g}


def _only_parts_picked() -> bool:
    """The command line picks parts and nothing else: no key override, no experiment file."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    choices = _hydra_choices()
    if choices is None or choices.get("experiment"):
        return False
    groups = {group.split("@")[0] for group in choices}
    overrides = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    keys = [override.key_or_group for override in overrides]
    return all(key in groups or key.split("/")[0].split(".")[0] == "hydra" for key in keys)


def _default_config() -> DictConfig | None:
    """The config of this run's parts with no key overrides, composed by the running app."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    choices = _hydra_choices()
    if choices is None or not GlobalHydra.instance().is_initialized():
        return None
    # the experiment file's key overrides are what the screen should show, so it stays out; a
    # group removed with `~group` stays in, and the screen shows its removal
    overrides = [
        f"{group}={choice}"
        for group, choice in choices.items()
        if choice is not None and group != "experiment" and "@" not in group
    ]
    try:
        return compose(HydraConfig.get().job.config_name, overrides=overrides)
    except Exception:  # e.g. a group appended with `+group=...`: say nothing rather than guess
        return None
