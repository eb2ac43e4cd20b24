"""The autopilot's record: one `Step` per run (or per group of seeds), and the files it writes.

`autopilot.json` holds everything a resumed autopilot needs (the trail, the overrides it started
from, why it stopped); trail.csv, trail.md, trail.png and best.yaml are views of the same steps.
Every file is rewritten whole after each step, atomically, so a kill never leaves half of one.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from practicum.config.goal import Goal
from practicum.errors import UserError
from practicum.platform.files import save_figure, write_json, write_text

STATE_FILE = "autopilot.json"
SPLITS = ("train", "val", "test")


@dataclass
class Step:
    number: int
    change: list[str]  # the one change this step made (empty for the baseline)
    remedy: str  # the remedy it carried out (train_longer, capacity, ...); "baseline"
    why: str  # the diagnosis that called for it: verdict / case: evidence
    overrides: list[str]  # the whole command line of this step
    objective: dict[str, float | None]  # the goal metric per split (the mean over seeds)
    se_val: float | None  # its standard error on val
    decision: str  # baseline, kept, reverted
    reason: str  # the numbers behind the decision
    verdict: str | None
    case: str | None
    goal_met: bool
    wall_time_s: float
    run_dirs: list[str] = field(default_factory=list)
    diagnosis: dict[str, Any] | None = None  # of the step's run (the seed nearest the mean)
    # the gain over the best step it was judged against, in the goal's direction, and its
    # standard error: paired on the same val examples, or unpaired (the two steps' own errors)
    gain: float | None = None
    gain_se: float | None = None
    paired: bool = False

    @property
    def folder(self) -> str:
        return f"step_{self.number:02d}"

    @classmethod
    def from_dict(cls, content: dict[str, Any]) -> Step:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in content.items() if k in known})


def command(overrides: list[str]) -> str:
    return " ".join(["python train.py", *(shlex.quote(o) for o in overrides)])


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _row(step: Step) -> dict[str, Any]:
    return {
        "step": step.number,
        "change": " ".join(step.change) or "(baseline)",
        "remedy": step.remedy,
        "why": step.why,
        **{f"{split}_objective": _number(step.objective.get(split)) for split in SPLITS},
        "val_se": _number(step.se_val),
        "gain": _number(step.gain),
        "gain_se": _number(step.gain_se),
        "paired": "" if step.gain is None else ("yes" if step.paired else "no"),
        "decision": step.decision,
        "reason": step.reason,
        "case": step.case or "",
        "wall_time_s": f"{step.wall_time_s:.1f}",
        "run_dir": step.folder,
    }


def write_trail(
    folder: Path, steps: list[Step], goal: Goal, skipped: list[dict[str, Any]] | None = None
) -> None:
    """trail.csv, trail.md and trail.png from the steps so far (and the changes not run)."""
    skipped = skipped or []
    rows = [_row(step) for step in steps]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else ["step"])
    writer.writeheader()
    writer.writerows(rows)
    write_text(folder / "trail.csv", text.getvalue())
    metric = goal.metric.split("/", 1)[-1]
    lines = [
        f"# Autopilot trail: {goal.describe()}",
        "",
        f"| step | change | why | train {metric} | val {metric} | test {metric} | gain over the "
        "best ± SE | decision | time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        change = "(baseline)" if row["change"] == "(baseline)" else f"`{row['change']}`"
        cells = [
            str(row["step"]),
            change,
            row["why"].replace("|", "\\|"),
            row["train_objective"],
            row["val_objective"] + (f" ± {row['val_se']}" if row["val_se"] else ""),
            row["test_objective"],
            f"{row['gain']} ± {row['gain_se']} ({'paired' if row['paired'] == 'yes' else 'unpaired'})"
            if row["gain"]
            else "",
            f"**{row['decision']}** ({row['reason']})" if row["reason"] else row["decision"],
            f"{row['wall_time_s']} s",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", "Changes not run (they would have wasted a run):", ""]
        lines += [
            f"- from step {item['best_step']}: `{' '.join(item['change'])}`: {item['reason']}"
            for item in skipped
        ]
    write_text(folder / "trail.md", "\n".join(lines) + "\n")
    plot_trail(folder / "trail.png", steps, goal)


def plot_trail(path: Path, steps: list[Step], goal: Goal) -> None:
    """The val objective of each step, the target, the kept steps marked and joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    try:
        scored = [(s.number, s.objective.get("val"), s.decision) for s in steps]
        scored = [(n, v, d) for n, v, d in scored if v is not None]
        kept = [(n, v) for n, v, d in scored if d in ("baseline", "kept")]
        dropped = [(n, v) for n, v, d in scored if d not in ("baseline", "kept")]
        if kept:
            ax.plot(*zip(*kept, strict=True), "o-", color="tab:green", label="kept")
        if dropped:
            ax.plot(*zip(*dropped, strict=True), "x", color="tab:red", ms=8, label="reverted")
        ax.axhline(goal.target, color="gray", linestyle="--", label=f"target {goal.target:g}")
        ax.set_xlabel("step")
        ax.set_ylabel(goal.metric)
        ax.set_xticks([s.number for s in steps])
        ax.set_title(f"Autopilot: {goal.describe()}")
        ax.legend(loc="best")
        fig.tight_layout()
        save_figure(fig, path)
    finally:
        plt.close(fig)


def write_state(folder: Path, state: dict[str, Any], steps: list[Step], best: Step | None) -> None:
    """autopilot.json (and best.yaml once a step has finished)."""
    content = {
        **state,
        "steps": len(steps),
        "runs": sum(len(s.run_dirs) for s in steps),
        "best_step": None if best is None else best.number,
        "best_overrides": None if best is None else best.overrides,
        "objective": None if best is None else best.objective,
        "trail": [asdict(step) for step in steps],
    }
    write_json(folder / STATE_FILE, content)
    if best is not None:
        best_yaml = {
            "step": best.number,
            "run_dir": str(folder / best.folder),
            "objective": best.objective,
            "overrides": best.overrides,
            "command": command(best.overrides),
        }
        write_text(folder / "best.yaml", yaml.safe_dump(best_yaml, sort_keys=False))


def read_state(folder: Path) -> tuple[dict[str, Any], list[Step]]:
    """What a resumed autopilot goes on from: its state and its finished steps."""
    path = folder / STATE_FILE
    if not path.is_file():
        raise UserError(
            f"autopilot.resume={folder}: no {STATE_FILE} there; pass the folder of an autopilot "
            "(logs/<task_name>/autopilot/<timestamp>)"
        )
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"autopilot.resume: {path} is not readable JSON ({exc.msg})") from exc
    return content, [Step.from_dict(step) for step in content.get("trail", [])]


def shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def step_line(step: Step, goal: Goal) -> str:
    """The step's one line on the terminal."""
    metric = goal.metric.split("/", 1)[-1]
    o = step.objective
    values = f"val {metric} {shown(o.get('val'))} (train {shown(o.get('train'))}, test {shown(o.get('test'))})"
    change = " ".join(step.change) or "baseline"
    verdict = f"{step.decision} ({step.reason})" if step.reason else step.decision
    return (
        f"step {step.number:02d}  {change:<44} {values}  {verdict}  "
        f"[{step.case or step.verdict}]  {step.wall_time_s:.1f} s"
    )


def discard_fresh(folder: Path) -> None:
    """Remove a folder that holds nothing but Hydra's record and logs (a resume's own)."""
    import shutil

    if not folder.is_dir():
        return
    for item in folder.rglob("*"):
        if (
            item.is_file()
            and ".hydra" not in item.relative_to(folder).parts
            and item.suffix != ".log"
        ):
            return
    shutil.rmtree(folder, ignore_errors=True)
