"""What the terminal shows at the end of a run: the metrics table (rows are metrics, columns the
splits) and the diagnosis panel, or one line for a trial of a sweep."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from practicum.config.goal import Goal
from practicum.methodology.cases import Diagnosis
from practicum.methodology.report import print_panel
from practicum.methodology.run_summary import RunSummary

SPLITS = ("train", "val", "test")


def print_metrics_table(
    metrics: dict[str, float], goal: Goal, title: str, console: Console | None = None
) -> None:
    """Rows are metrics, columns the splits; the goal metric's row is highlighted."""
    names = sorted({key.split("/", 1)[1] for key in metrics if "/" in key})
    splits = [s for s in SPLITS if any(key.startswith(f"{s}/") for key in metrics)]
    table = Table(title=title, title_justify="left")
    # a narrow terminal wraps the names; the numbers are never cut
    table.add_column("metric", overflow="fold")
    for split in splits:
        table.add_column(split, justify="right", no_wrap=True)
    goal_name = goal.metric.split("/", 1)[-1]
    for name in names:
        cells = [_cell(metrics.get(f"{split}/{name}")) for split in splits]
        style = "bold" if name == goal_name else None
        table.add_row(name, *cells, style=style)
    (console or Console()).print(table)


def print_outcome(
    summary: RunSummary, diagnosis: Diagnosis, goal: Goal, console: Console, one_line: bool = False
) -> None:
    """The table, the diagnosis panel and the run directory; `one_line` (a sweep's trial, where
    many runs share one terminal): the goal metric, met or not, the verdict and the directory."""
    if one_line:
        console.print(trial_line(summary, goal), soft_wrap=True, highlight=False)
        return
    title = f"Best checkpoint (epoch {summary.best_epoch})"
    print_metrics_table(summary.metrics, goal, title=title, console=console)
    if summary.status == "diverged":
        console.print(
            "[red]Training diverged[/red]: the loss became non-finite or blew up; see report.md."
        )
    print_panel(summary, diagnosis, goal, console)
    console.print(f"Run directory: {summary.run_dir}", soft_wrap=True)


def trial_line(summary: RunSummary, goal: Goal) -> str:
    """`trial 3: val/acc 0.9333 (train 0.9554, test 0.9481) goal not met, high_train_error -> <dir>`."""
    metrics = summary.metrics
    others = [s for s in SPLITS if goal.at(s) != goal.metric and goal.at(s) in metrics]
    value = f"{goal.metric} {_cell(metrics.get(goal.metric))}"
    if others:
        value += " (" + ", ".join(f"{s} {_cell(metrics[goal.at(s)])}" for s in others) + ")"
    met = "met" if summary.goal_met else "not met"
    outcome = f"goal {met}, {summary.verdict}" if summary.verdict else summary.status
    return f"trial {Path(summary.run_dir).name}: {value} {outcome} -> {summary.run_dir}"


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
