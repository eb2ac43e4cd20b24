"""The composed config as a rich tree: printed when a run starts and saved as config_tree.txt."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.tree import Tree

# the groups a reader looks for first; the rest follow in config order
FIRST = ("data", "model", "optimizer", "scheduler", "goal", "trainer", "callbacks", "logger")


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
    """Print the tree and write it to <run dir>/config_tree.txt (rank zero only under DDP)."""
    if int(os.environ.get("LOCAL_RANK", 0)) or int(os.environ.get("RANK", 0)):
        return None
    tree = config_tree(cfg)
    console.print(tree)
    path = output_dir / "config_tree.txt"
    with open(path, "w") as file:
        Console(file=file, width=120, color_system=None).print(tree)
    return path
