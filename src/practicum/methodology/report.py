"""report.md and the closing panel: the diagnosis in words."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from practicum.config.goal import Goal
from practicum.methodology.cases import Diagnosis
from practicum.methodology.run_summary import RunSummary
from practicum.platform.files import write_text

SPLITS = ("train", "val", "test")
# what W&B's run table shows for each run, beside the best checkpoint's metrics
OUTCOME_KEYS = ("goal_met", "verdict", "objective", "best_epoch", "epochs_trained", "status")


def write_report(
    path: Path, summary: RunSummary, diagnosis: Diagnosis, goal: Goal, title: str
) -> Path:
    metrics = summary.metrics
    names = sorted({key.split("/", 1)[1] for key in metrics})
    lines = [
        f"# {title}",
        "",
        f"**Goal:** {goal.describe()} — **{'met' if summary.goal_met else 'not met'}**  ",
        f"**Verdict:** `{diagnosis.verdict}`"
        + (f" (case `{diagnosis.case}`)" if diagnosis.case else "")
        + f" — {diagnosis.headline}  ",
        *([f"**Stop:** {diagnosis.stop}  "] if diagnosis.stop else []),
        f"**Status:** {summary.status}, best epoch {summary.best_epoch} of {summary.epochs_trained}, "
        f"{summary.wall_time_s or 0:.1f} s",
        "",
        "## Evidence",
        "",
        *[f"- {line}" for line in diagnosis.evidence],
        "",
        "## What to try next",
        "",
        *[f"{i}. {step}" for i, step in enumerate(diagnosis.next_steps, 1)],
        "",
        "## Metrics of the best checkpoint",
        "",
        "Measured in eval mode on the full train, validation and test splits.",
        "",
        "| metric | " + " | ".join(SPLITS) + " |",
        "|---|" + "---:|" * len(SPLITS),
        *[
            f"| {name} | "
            + " | ".join(_fmt(metrics.get(f"{split}/{name}")) for split in SPLITS)
            + " |"
            for name in names
        ],
        "",
        "## Learning curves",
        "",
        "![learning curves](curves.png)",
        "",
        *_audit_section(summary.audit),
    ]
    write_text(path, "\n".join(lines))
    return path


def print_panel(
    summary: RunSummary, diagnosis: Diagnosis, goal: Goal, console: Console, top: int = 3
) -> None:
    """Goal, the goal metric on each split, the verdict and the most useful next steps."""
    metrics = summary.metrics
    values = "   ".join(
        f"{split} {_fmt(metrics.get(goal.at(split)))}"
        for split in SPLITS
        if goal.at(split) in metrics
    )
    met = "[green]met[/green]" if summary.goal_met else "[red]not met[/red]"
    steps = "\n".join(f"  {i}. {step}" for i, step in enumerate(diagnosis.next_steps[:top], 1))
    case = f" ({diagnosis.case})" if diagnosis.case and diagnosis.case != diagnosis.verdict else ""
    body = (
        f"[bold]Goal[/bold] {goal.describe()}: {met}\n"
        f"[bold]{goal.metric.split('/', 1)[-1]}[/bold]  {values}\n"
        f"[bold]Verdict[/bold] {diagnosis.verdict}{case}: {diagnosis.headline}\n"
        + (f"[bold]Stop[/bold] {diagnosis.stop}" if diagnosis.stop else "")
    ).rstrip("\n")
    console.print(Panel(body, title="practicum diagnosis", expand=False))
    # below the box, one line each: a long command wraps as the terminal wraps it and pastes
    # whole, with no border characters in it
    if steps:
        console.print("[bold]Next[/bold]", highlight=False)
        console.print(steps, soft_wrap=True, highlight=False, markup=False)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def send_to_loggers(loggers: list, summary: RunSummary, report: Path, step: int) -> None:
    """The outcome where runs are compared: W&B's run summary (goal met, verdict, the best
    checkpoint's metrics: columns to sort and filter runs by) and report.md as TensorBoard text."""
    for logger in loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            outcome = {key: value for key, value in asdict(summary).items() if key in OUTCOME_KEYS}
            best = {f"best/{name}": value for name, value in summary.metrics.items()}
            logger.experiment.summary.update({**outcome, **best})
        elif kind == "TensorBoardLogger":
            logger.experiment.add_text("report", report.read_text(), global_step=step)
            logger.experiment.flush()


AUDIT_FILES = {
    "label_issues.csv": "labels that look wrong, most suspicious first (split, origin, given, suggested, score)",
    "duplicates.csv": "validation and test examples with a copy in train",
    "worst_val.csv": "the validation examples with the highest loss",
}


def _audit_section(audit: dict | None) -> list[str]:
    """The data audit's files: the tables listed, the pictures shown."""
    files = (audit or {}).get("files") or []
    if not files:
        return []
    lines = ["## Data audit", ""]
    lines += [f"- [{name}]({name}): {AUDIT_FILES[name]}" for name in files if name in AUDIT_FILES]
    lines.append("")
    lines += [f"![{name[:-4]}]({name})" for name in files if name.endswith(".png")]
    return [*lines, ""]
