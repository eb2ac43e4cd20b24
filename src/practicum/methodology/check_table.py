"""The record of a sanity check (`CheckResult`) and where results go: checks.json and the table
`debug=checks` prints."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from practicum.methodology.run_summary import finite_or_none
from practicum.platform.files import write_json

STATUSES = ("pass", "fail", "skip")
STYLES = {"pass": "bold green", "fail": "bold red", "skip": "yellow"}


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # one of STATUSES; "skip" when the check does not apply to this setup
    value: float  # the measured number; nan when nothing could be measured
    threshold: str  # what the value must satisfy, in words
    detail: str

    @property
    def passed(self) -> bool:
        return self.status != "fail"

    def as_dict(self) -> dict[str, Any]:
        plain = {"value": finite_or_none(self.value), "passed": self.passed}
        return {**dataclasses.asdict(self), **plain}


def write_checks(
    results: Sequence[CheckResult], path: str | Path, seconds: float | None = None
) -> Path:
    """Write `checks.json` (into `path` when it is a directory), with the seconds the checks took;
    return the file written."""
    path = Path(path)
    if path.is_dir():
        path = path / "checks.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    checks = [result.as_dict() for result in results]
    content = {"all_passed": all(r.passed for r in results), "checks": checks}
    write_json(path, content if seconds is None else {**content, "seconds": round(seconds, 3)})
    return path


# columns below which the detail goes under the table rather than beside it
WIDE_TERMINAL = 110


def print_checks(results: Sequence[CheckResult], console: Console | None = None) -> None:
    """One row per check: status coloured, the measured value against its threshold, and why.

    The why is a column on a wide terminal and a line per check under the table on a narrow one,
    where a fifth column would squeeze the numbers apart."""
    console = console or Console()
    wide = console.width >= WIDE_TERMINAL
    table = Table(title="Sanity checks", title_justify="left")
    table.add_column("check", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("threshold", overflow="fold")
    if wide:
        table.add_column("detail", ratio=1, overflow="fold")
    for result in results:
        status = f"[{STYLES[result.status]}]{result.status.upper()}[/]"
        value = f"{result.value:.4g}" if math.isfinite(result.value) else "—"
        table.add_row(result.name, status, value, result.threshold, *[result.detail] * wide)
    console.print(table)
    if not wide:
        for result in results:
            console.print(f"[bold]{result.name}[/bold]: {result.detail}", overflow="fold")
