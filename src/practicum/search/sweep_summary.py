"""After a multirun: summary.csv, summary.md and search.png in the sweep directory.

A Hydra callback writes them. It only reads what each trial left on disk (its overrides,
summary.json and metrics.csv), so it works with every sweeper and launcher, and
`practicum-summarize` (summarize.py) can write them again later. A sweep none of whose trials
finished ends with one error line and exit status 1, its summary written first.
"""

from __future__ import annotations

import csv
import logging
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from practicum.errors import report
from practicum.search.plots import plot_search
from practicum.search.sweep import SPLITS, TRIAL_STATUSES, Sweep, Trial, fmt, read_sweep, short
from practicum.search.sweep_study import schedule

log = logging.getLogger(__name__)
SWEEP_FAILED_EXIT = 1


class SweepSummary(Callback):
    """Hydra callback: summarize the sweep once all its jobs have returned."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            sweep_dir = Path(config.hydra.sweep.dir)
            if not sweep_dir.is_dir():  # the sweep stopped before its first job
                return
            params = config.hydra.sweeper.get("params")
            params = OmegaConf.to_container(params, resolve=True) if params else {}
            script = Path(sys.argv[0]).name
            command = f"python {script}" if script.endswith(".py") else script
            counts = summarize_sweep(sweep_dir, params, command)["counts"]
            print(f"Sweep summary: {sweep_dir / 'summary.md'}", flush=True)
        except Exception as exc:  # a summary must never turn a finished sweep into a failure
            log.warning("sweep summary not written: %s: %s", type(exc).__name__, exc)
            print(f"practicum: warning: sweep summary not written: {exc!r}", file=sys.stderr)
            return
        # Hydra calls this also while an error ends the sweep: Ctrl-C goes on as it is; anything
        # else (Optuna finds no best trial when all failed) gives way to the one line that says why
        ending = sys.exc_info()[1]
        failed = all_failed(sweep_dir, counts)
        if failed and (ending is None or isinstance(ending, Exception)):
            if ending is not None:  # still said, on the sweep's log
                log.warning("the sweep stopped with %s: %s", type(ending).__name__, ending)
            report(failed)
            sys.exit(SWEEP_FAILED_EXIT)


def all_failed(sweep_dir: Path, counts: dict[str, int]) -> str | None:
    """The error line of a sweep none of whose trials finished (failed, refused, lost), else None."""
    if counts["total"] == 0 or counts["completed"] + counts["diverged"] > 0:
        return None
    return f"all {counts['total']} trials of the sweep failed: see {sweep_dir / 'summary.md'}"


def summarize_sweep(
    sweep_dir: Path, sweeper_params: dict | None = None, command: str = "python train.py"
) -> dict[str, Any]:
    """Write summary.csv, summary.md and search.png; return the best trial, counts and warnings."""
    sweep = read_sweep(Path(sweep_dir), sweeper_params, command)
    timing = schedule(sweep.dir, sweep.trials)
    write_csv(sweep, sweep.dir / "summary.csv")
    (sweep.dir / "summary.md").write_text(markdown(sweep, timing.lines()))
    plot_search(sweep, sweep.dir / "search.png")
    best = None
    if sweep.best is not None:
        trial = sweep.best
        params = {key: trial.params.get(key) for key in sweep.keys}
        best = {"job": trial.job, "objective": trial.objective, "params": params}
        best |= {"run_dir": str(trial.run_dir), "command": reproduce(trial, command)}
    counts = {status: sweep.count(status) for status in TRIAL_STATUSES} | {
        "total": len(sweep.trials)
    }
    groups = [{**group, "trials": [t.job for t in group["trials"]]} for group in sweep.groups]
    return {
        "best": best,
        "counts": counts,
        "warnings": sweep.warnings,
        "groups": groups,
        "schedule": asdict(timing),
    }


def reproduce(trial: Trial, command: str) -> str:
    """The single run (not -m) that repeats this trial."""
    return " ".join([command, *(shlex.quote(item) for item in trial.overrides)])


def write_csv(sweep: Sweep, path: Path) -> None:
    names = {key for trial in sweep.trials for key in trial.metrics}
    ours = [sweep.goal.at(split) for split in SPLITS]
    metrics = [m for m in ours if m in names] + sorted(names - set(ours))
    repeats = ["objective_std"] * any(t.get("seeds") is not None for t in sweep.trials)
    details = ["verdict", "goal_met", "best_epoch", "epochs_trained", "wall_time_s"]
    header = ["job", *sweep.keys, "objective", *repeats, *metrics, "status", *details]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*header, "overrides", "run_dir", "error"])
        for t in sweep.trials:
            _missing = (
                "" if t.summary else "no summary.json yet: still running, or lost with the launcher"
            )
            writer.writerow(
                [t.job, *(t.params.get(k) for k in sweep.keys), t.objective]
                + [t.get(k) for k in repeats]
                + [t.metrics.get(m) for m in metrics]
                + [t.status, *(t.get(k) for k in details)]
                + [" ".join(t.overrides), t.run_dir, t.get("error") or _missing]
            )


def markdown(sweep: Sweep, schedule_lines: list[str] = ()) -> str:
    goal, keys, best = sweep.goal, sweep.keys, sweep.best
    met = sum(bool(t.get("goal_met")) for t in sweep.trials)
    counts = ", ".join(
        f"{sweep.count(status)} {status}"
        for status in TRIAL_STATUSES
        if sweep.count(status) or status == "completed"
    )
    lines = [f"# Sweep summary: {sweep.dir.name}", "", f"Sweep directory: `{sweep.dir}`", ""]
    lines += [f"Goal {goal.describe()}. {len(sweep.trials)} trials: {counts}; {met} met the goal."]
    lines += ["", *schedule_lines] if schedule_lines else []
    lines += ["", "## Best trial", ""]
    if best:
        splits = ", ".join(f"{s} {fmt(best.metrics.get(goal.at(s)))}" for s in SPLITS)
        lines += [
            f"Job {best.job}: objective {fmt(best.objective)} ({goal.metric}; {splits}); "
            f"verdict {best.get('verdict', '—')}; run dir `{best.run_dir}`.",
            "",
            f"Reproduce it (a single run, not -m):\n\n```bash\n{reproduce(best, sweep.command)}\n```",
        ]
    else:
        lines += ["No trial completed with a finite objective."]
    if sweep.groups and sweep.groups[0]["mean"] is not None:
        top = sweep.groups[0]
        setting = " ".join(f"{key}={value}" for key, value in top["params"].items())
        score = f"{fmt(top['mean'])} ± {fmt(top['std'])}"
        lines += ["", f"Best mean over seeds: `{setting}` ({score}); a single seed can be lucky."]
    if sweep.warnings:
        lines += ["", "## Warnings", "", *(f"- {warning}" for warning in sweep.warnings)]
    metrics = [goal.at(split) for split in SPLITS]
    rows = [["rank", "job", *keys, "objective", *metrics, "status", "verdict", "time (s)"]]
    for rank, t in enumerate(sweep.ranked, 1):
        std = t.get("objective_std")
        objective = fmt(t.objective) + ("" if std is None else f" ± {fmt(std)}")
        cells = [fmt(t.metrics.get(m)) for m in metrics]
        details = [t.status, t.get("verdict", "—"), fmt(t.get("wall_time_s"))]
        values = [short(t.params.get(key, "")) for key in keys]
        rows.append([rank, t.job, *values, objective, *cells, *details])
    lines += ["", "## Trials, best first", "", *_table(rows)]
    if sweep.groups:
        hyper = [key for key in keys if key != "seed"]
        rows = [[*hyper, "seeds", "finite / trials", f"{goal.metric} mean ± std"]]
        for group in sweep.groups:
            members = group["trials"]
            seeds = ",".join(t.params.get("seed", "?") for t in members)
            finite = f"{sum(t.objective is not None for t in members)} / {len(members)}"
            score = f"{fmt(group['mean'])} ± {fmt(group['std'])}"
            rows.append([*map(short, group["params"].values()), seeds, finite, score])
        lines += ["", "## Mean ± std over seeds, best mean first", "", *_table(rows)]
    return "\n".join(lines) + "\n"


def _table(rows: list[list[Any]]) -> list[str]:
    cells = [[str(cell).replace("|", "\\|") for cell in row] for row in rows]
    cells.insert(1, ["---"] * len(rows[0]))
    return ["| " + " | ".join(row) + " |" for row in cells]
