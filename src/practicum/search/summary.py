"""After a multirun: summary.csv, summary.md and search.png in the sweep directory.

A Hydra callback writes them. It only reads what each trial left on disk (its overrides,
summary.json and metrics.csv), so it works with every sweeper and launcher.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import shlex
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from practicum.methodology.goal import Goal

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
STATUSES = ("completed", "failed", "diverged")
EDGE = 0.1  # the outer 10% of a searched range counts as its edge
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass
class Trial:
    job: int
    overrides: list[str]
    summary: dict[str, Any]  # the run's summary.json; {} when the run died before writing it
    run_dir: Path

    @property
    def params(self) -> dict[str, str]:
        return {k.lstrip("+~"): v for k, _, v in (o.partition("=") for o in self.overrides)}

    @property
    def status(self) -> str:
        return self.summary.get("status", "failed")

    @property
    def metrics(self) -> dict[str, float]:
        return self.summary.get("metrics") or {}

    @property
    def objective(self) -> float | None:
        """What the sweeper got: `objective` when the run wrote one, else the goal metric."""
        metric = (self.summary.get("goal") or {}).get("metric")
        return _number(self.summary.get("objective", self.metrics.get(metric)), finite=True)


@dataclass
class Sweep:
    """A sweep directory read back: what the three files show."""

    dir: Path
    goal: Goal
    trials: list[Trial]  # by job number
    ranked: list[Trial]  # completed trials first, best first
    keys: list[str]  # the swept hyperparameters, in command-line order
    log_keys: set[str]
    params: dict[str, Any]  # hydra.sweeper.params: the declared search space, if any
    groups: list[dict[str, Any]]  # trials repeated over seeds, best mean first
    command: str
    warnings: list[str] = field(default_factory=list)

    @property
    def best(self) -> Trial | None:
        top = self.ranked[0] if self.ranked else None
        return top if top and top.status == "completed" and top.objective is not None else None

    def count(self, status: str) -> int:
        return sum(trial.status == status for trial in self.trials)


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
            summarize_sweep(sweep_dir, params, command)
            print(f"Sweep summary: {sweep_dir / 'summary.md'}", flush=True)
        except Exception as exc:  # a summary must never turn a finished sweep into a failure
            log.warning("sweep summary not written: %s: %s", type(exc).__name__, exc)
            print(f"practicum: warning: sweep summary not written: {exc!r}", file=sys.stderr)


def summarize_sweep(
    sweep_dir: Path, sweeper_params: dict | None = None, command: str = "python train.py"
) -> dict[str, Any]:
    """Write summary.csv, summary.md and search.png; return the best trial, counts and warnings."""
    from practicum.search.plots import plot_search  # plots import this module's Sweep

    sweep = read_sweep(Path(sweep_dir), sweeper_params, command)
    write_csv(sweep, sweep.dir / "summary.csv")
    (sweep.dir / "summary.md").write_text(markdown(sweep))
    plot_search(sweep, sweep.dir / "search.png")
    best = None
    if sweep.best is not None:
        trial = sweep.best
        params = {key: trial.params.get(key) for key in sweep.keys}
        best = {"job": trial.job, "objective": trial.objective, "params": params}
        best |= {"run_dir": str(trial.run_dir), "command": reproduce(trial, command)}
    counts = {status: sweep.count(status) for status in STATUSES} | {"total": len(sweep.trials)}
    groups = [{**group, "trials": [t.job for t in group["trials"]]} for group in sweep.groups]
    return {
        "best": best,
        "counts": counts,
        "warnings": sweep.warnings,
        "groups": groups,
    }


def read_sweep(sweep_dir: Path, sweeper_params: dict | None, command: str) -> Sweep:
    trials = collect_trials(sweep_dir)
    goal = find_goal(trials)
    params = _saved_sweeper_params(sweep_dir) if sweeper_params is None else sweeper_params
    keys = swept_keys(trials, params)
    log_keys = {key for key in keys if _is_log_scale(key, trials, params)}
    # completed trials first: a diverged run's last good checkpoint is not a result to reproduce
    ranked = sorted(trials, key=lambda t: (t.status != "completed", *_rank(t.objective, goal)))
    groups = seed_groups(trials, keys, goal)
    sweep = Sweep(sweep_dir, goal, trials, ranked, keys, log_keys, params, groups, command)
    # with repeats, the best configuration is the best mean over seeds, not the luckiest seed
    best = groups[0]["params"] if groups else sweep.best.params if sweep.best else {}
    sweep.warnings = edge_warnings(trials, keys, best, params, log_keys)
    return sweep


def collect_trials(sweep_dir: Path) -> list[Trial]:
    """One Trial per job folder (any folder below the sweep with `.hydra/overrides.yaml`)."""
    trials = []
    for path in sweep_dir.glob("**/.hydra/overrides.yaml"):
        run_dir = path.parent.parent
        job = int(run_dir.name) if run_dir.name.isdigit() else len(trials)
        summary_path = run_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        trials.append(Trial(job, yaml.safe_load(path.read_text()) or [], summary, run_dir))
    return sorted(trials, key=lambda t: t.job)


def find_goal(trials: list[Trial]) -> Goal:
    """The goal from any trial's summary.json (a failed trial's too)."""
    for node in (t.summary.get("goal") for t in trials):
        if node and node.get("metric"):
            return Goal(str(node["metric"]), str(node["mode"]), float(node["target"]))
    return Goal("objective", "max", math.nan)


def swept_keys(trials: list[Trial], sweeper_params: dict) -> list[str]:
    """Keys whose value differs between jobs or that the sweeper searches; not fixed overrides."""
    keys = dict.fromkeys(key for trial in trials for key in trial.params)
    return [k for k in keys if k in sweeper_params or len({t.params.get(k) for t in trials}) > 1]


def seed_groups(trials: list[Trial], keys: list[str], goal: Goal) -> list[dict[str, Any]]:
    """Trials that differ only in `seed`, grouped, with mean and std of the objective."""
    hyper = [key for key in keys if key != "seed"]
    grouped: dict[tuple, list[Trial]] = {}
    for trial in trials:
        grouped.setdefault(tuple(trial.params.get(k) for k in hyper), []).append(trial)
    if "seed" not in keys or all(len(members) < 2 for members in grouped.values()):
        return []
    groups = []
    for values, members in grouped.items():
        scores = [t.objective for t in members if t.objective is not None]
        mean = statistics.fmean(scores) if scores else None
        std = statistics.stdev(scores) if len(scores) > 1 else None
        params = dict(zip(hyper, values, strict=True))
        groups.append({"params": params, "trials": members, "mean": mean, "std": std})
    return sorted(groups, key=lambda group: _rank(group["mean"], goal))


def edge_warnings(
    trials: list[Trial], keys: list[str], best: dict, sweeper_params: dict, log_keys: set
) -> list[str]:
    """Numeric hyperparameters whose best value lies in the outer 10% of the range searched."""
    warnings = []
    for key in [k for k in keys if k != "seed" and _number(best.get(k)) is not None]:
        tried = [v for t in trials if (v := _number(t.params.get(key))) is not None]
        declared = [float(n) for n in NUMBER.findall(str(sweeper_params.get(key, "")))]
        low, high = min(tried + declared), max(tried + declared)
        if len(set(tried)) < 2:
            continue
        scale = math.log if key in log_keys and low > 0 else float
        position = (scale(_number(best[key])) - scale(low)) / (scale(high) - scale(low))
        # a range that starts at 0 (dropout, weight decay) has nothing below it to try
        side = "low" if position <= EDGE and low != 0 else "high" if position >= 1 - EDGE else ""
        if side:
            warnings.append(
                f"the best {key} ({best[key]}) is at the {side} edge of the range searched: "
                "extend the range"
            )
    return warnings


def reproduce(trial: Trial, command: str) -> str:
    """The single run (not -m) that repeats this trial."""
    return " ".join([command, *(shlex.quote(item) for item in trial.overrides)])


def write_csv(sweep: Sweep, path: Path) -> None:
    names = {key for trial in sweep.trials for key in trial.metrics}
    ours = [sweep.goal.at(split) for split in SPLITS]
    metrics = [m for m in ours if m in names] + sorted(names - set(ours))
    repeats = ["objective_std"] * any("objective_std" in t.summary for t in sweep.trials)
    details = ["verdict", "goal_met", "best_epoch", "epochs_trained", "wall_time_s"]
    header = ["job", *sweep.keys, "objective", *repeats, *metrics, "status", *details]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*header, "overrides", "run_dir", "error"])
        for t in sweep.trials:
            _missing = "" if t.summary else "no summary.json: the run stopped before writing it"
            writer.writerow(
                [t.job, *(t.params.get(k) for k in sweep.keys), t.objective]
                + [t.summary.get(k) for k in repeats]
                + [t.metrics.get(m) for m in metrics]
                + [t.status, *(t.summary.get(k) for k in details)]
                + [" ".join(t.overrides), t.run_dir, t.summary.get("error", _missing)]
            )


def markdown(sweep: Sweep) -> str:
    goal, keys, best = sweep.goal, sweep.keys, sweep.best
    met = sum(bool(t.summary.get("goal_met")) for t in sweep.trials)
    counts = ", ".join(f"{sweep.count(status)} {status}" for status in STATUSES)
    lines = [f"# Sweep summary: {sweep.dir.name}", "", f"Sweep directory: `{sweep.dir}`", ""]
    lines += [f"Goal {goal.describe()}. {len(sweep.trials)} trials: {counts}; {met} met the goal."]
    lines += ["", "## Best trial", ""]
    if best:
        splits = ", ".join(f"{s} {_fmt(best.metrics.get(goal.at(s)))}" for s in SPLITS)
        lines += [
            f"Job {best.job}: objective {_fmt(best.objective)} ({goal.metric}; {splits}); "
            f"verdict {best.summary.get('verdict', '—')}; run dir `{best.run_dir}`.",
            "",
            f"Reproduce it (a single run, not -m):\n\n```bash\n{reproduce(best, sweep.command)}\n```",
        ]
    else:
        lines += ["No trial completed with a finite objective."]
    if sweep.groups and sweep.groups[0]["mean"] is not None:
        top = sweep.groups[0]
        setting = " ".join(f"{key}={value}" for key, value in top["params"].items())
        score = f"{_fmt(top['mean'])} ± {_fmt(top['std'])}"
        lines += ["", f"Best mean over seeds: `{setting}` ({score}); a single seed can be lucky."]
    if sweep.warnings:
        lines += ["", "## Warnings", "", *(f"- {warning}" for warning in sweep.warnings)]
    metrics = [goal.at(split) for split in SPLITS]
    rows = [["rank", "job", *keys, "objective", *metrics, "status", "verdict", "time (s)"]]
    for rank, t in enumerate(sweep.ranked, 1):
        std = t.summary.get("objective_std")
        objective = _fmt(t.objective) + ("" if std is None else f" ± {_fmt(std)}")
        cells = [_fmt(t.metrics.get(m)) for m in metrics]
        details = [t.status, t.summary.get("verdict", "—"), _fmt(t.summary.get("wall_time_s"))]
        values = [_short(t.params.get(key, "")) for key in keys]
        rows.append([rank, t.job, *values, objective, *cells, *details])
    lines += ["", "## Trials, best first", "", *_table(rows)]
    if sweep.groups:
        hyper = [key for key in keys if key != "seed"]
        rows = [[*hyper, "seeds", "finite / trials", f"{goal.metric} mean ± std"]]
        for group in sweep.groups:
            members = group["trials"]
            seeds = ",".join(t.params.get("seed", "?") for t in members)
            finite = f"{sum(t.objective is not None for t in members)} / {len(members)}"
            score = f"{_fmt(group['mean'])} ± {_fmt(group['std'])}"
            rows.append([*map(_short, group["params"].values()), seeds, finite, score])
        lines += ["", "## Mean ± std over seeds, best mean first", "", *_table(rows)]
    return "\n".join(lines) + "\n"


def _is_log_scale(key: str, trials: list[Trial], sweeper_params: dict) -> bool:
    """Declared `tag(log, ...)`; for a plain list of values, positive values spanning 2 decades."""
    spec = str(sweeper_params.get(key, ""))
    if "tag(" in spec or "interval(" in spec:
        return bool(re.search(r"tag\(\s*log", spec))
    values = [_number(t.params.get(key)) for t in trials]
    if not values or any(v is None or v <= 0 for v in values):
        return False
    return max(values) / min(values) >= 100


def _saved_sweeper_params(sweep_dir: Path) -> dict:
    """`hydra.sweeper.params` as the sweep saved it (multirun.yaml, else a job's hydra.yaml)."""
    for path in [sweep_dir / "multirun.yaml", *list(sweep_dir.glob("*/.hydra/hydra.yaml"))[:1]]:
        if path.is_file():
            hydra_node = (yaml.safe_load(path.read_text()) or {}).get("hydra") or {}
            return (hydra_node.get("sweeper") or {}).get("params") or {}
    return {}


def _rank(value: float | None, goal: Goal) -> tuple[bool, float]:
    """Sort key: values first, best first in the goal's direction."""
    return (True, 0.0) if value is None else (False, -value if goal.mode == "max" else value)


def _number(text: Any, finite: bool = False) -> float | None:
    try:
        number = None if isinstance(text, bool) else float(text)
    except (TypeError, ValueError):
        return None
    return number if number is None or not finite or math.isfinite(number) else None


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _short(text: str) -> str:
    """A long number as 4 significant digits, for tables and axes (the command keeps all)."""
    number = _number(text)
    return text if number is None or len(text) <= 8 else f"{number:.4g}"


def _table(rows: list[list[Any]]) -> list[str]:
    cells = [[str(cell).replace("|", "\\|") for cell in row] for row in rows]
    cells.insert(1, ["---"] * len(rows[0]))
    return ["| " + " | ".join(row) + " |" for row in cells]
