"""summary.json: what a run reached, against its goal; and the table printed at the end of a run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from practicum.methodology.goal import Goal

SPLITS = ("train", "val", "test")


def write_json(path: Path, content: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(content, indent=2, default=_plain) + "\n")
    tmp.replace(path)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def print_metrics_table(
    metrics: dict[str, float], goal: Goal, title: str, console: Console | None = None
) -> None:
    """Rows are metrics, columns the splits; the goal metric's row is highlighted."""
    names = sorted({key.split("/", 1)[1] for key in metrics if "/" in key})
    splits = [s for s in SPLITS if any(key.startswith(f"{s}/") for key in metrics)]
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    goal_name = goal.metric.split("/", 1)[-1]
    for name in names:
        cells = [_cell(metrics.get(f"{split}/{name}")) for split in splits]
        style = "bold" if name == goal_name else None
        table.add_row(name, *cells, style=style)
    (console or Console()).print(table)


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
