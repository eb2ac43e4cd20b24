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
from practicum.methodology.history import read_history
from practicum.methodology.summary import write_json

log = logging.getLogger(__name__)
# one record per job, written by the job itself: it outlives a refused run's removed folder
RECORDS_DIR = ".trials"
EDGE = 0.1  # the outer 10% of a searched range counts as its edge
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass
class Trial:
    job: int
    overrides: list[str]
    status: str  # completed | failed | diverged
    objective: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    run_dir: str = ""
    error: str = ""

    @property
    def params(self) -> dict[str, str]:
        pairs = (item.partition("=") for item in self.overrides)
        return {key.lstrip("+~"): value for key, _, value in pairs}

    @property
    def metrics(self) -> dict[str, float]:
        return self.summary.get("metrics") or {}


class SweepSummary(Callback):
    """Record each job's outcome; after the multirun, summarize the whole sweep."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        try:
            if config.hydra.mode is not None and config.hydra.mode.name == "MULTIRUN":
                record_job(Path(config.hydra.sweep.dir), config, job_return)
        except Exception as exc:
            _warn(f"could not record job {config.hydra.job.get('num')}: {exc}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            params = config.hydra.sweeper.get("params")
            params = OmegaConf.to_container(params, resolve=True) if params else None
            result = summarize_sweep(Path(config.hydra.sweep.dir), params, _script())
            best = result["best"]
            best_text = f"best job {best['job']}, objective {best['objective']:.4g}" if best else ""
            print(f"Sweep summary ({best_text}): {result['files']['md']}", flush=True)
        except Exception as exc:  # a summary must never turn a finished sweep into a failure
            _warn(f"sweep summary not written: {type(exc).__name__}: {exc}")


def record_job(sweep_dir: Path, config: DictConfig, job_return: Any) -> None:
    """`.trials/<job>.json`: the job's overrides, status and the value the sweeper got."""
    failed = job_return.status.name == "FAILED"
    value = None if failed else job_return.return_value
    record = {
        "job": int(config.hydra.job.num),
        "overrides": list(job_return.overrides or []),
        "status": "failed" if failed else "completed",
        "return_value": _finite(value),
        "error": str(job_return._return_value) if failed else "",
        "run_dir": str(config.hydra.runtime.output_dir),
    }
    (sweep_dir / RECORDS_DIR).mkdir(parents=True, exist_ok=True)
    write_json(sweep_dir / RECORDS_DIR / f"{record['job']}.json", record)


def summarize_sweep(
    sweep_dir: Path, sweeper_params: dict | None = None, command: str = "python train.py"
) -> dict[str, Any]:
    """Write summary.csv, summary.md and search.png; return the best trial, counts and warnings."""
    sweep_dir = Path(sweep_dir)
    trials = collect_trials(sweep_dir)
    goal = find_goal(sweep_dir, trials)
    params = sweeper_params if sweeper_params is not None else _saved_sweeper_params(sweep_dir)
    keys = swept_keys(trials, params or {})
    # completed trials first: a diverged trial's last good checkpoint is not a result to reproduce
    ranked = sorted(trials, key=lambda t: (t.status != "completed", *_rank(t.objective, goal)))
    best = ranked[0] if ranked and ranked[0].objective is not None else None
    best = best if best and best.status == "completed" else None
    groups = seed_groups(ranked, keys, goal)
    best_params = groups[0]["params"] if groups and groups[0]["mean"] is not None else None
    if best_params is None and best:
        best_params = best.params
    warnings = edge_warnings(trials, keys, best_params or {}, params or {})
    counts = {s: sum(t.status == s for t in trials) for s in ("completed", "failed", "diverged")}
    files = {"csv": sweep_dir / "summary.csv", "md": sweep_dir / "summary.md"}
    files["png"] = sweep_dir / "search.png"
    write_csv(files["csv"], trials, keys, goal)
    context = {"goal": goal, "keys": keys, "counts": counts, "groups": groups, "command": command}
    files["md"].write_text(markdown(sweep_dir, ranked, best, warnings, context))
    log_keys = {k for k in keys if _is_log_scale(k, trials, params or {})}
    plot_search(files["png"], ranked, best, keys, log_keys, goal, f"Sweep {sweep_dir.name}")
    return {
        "sweep_dir": str(sweep_dir),
        "goal": goal.as_dict(),
        "swept": keys,
        "best": best and {**_brief(best), "command": reproduce(best, command)},
        "counts": {**counts, "total": len(trials)},
        "warnings": warnings,
        "groups": [{**g, "trials": [t.job for t in g["trials"]]} for g in groups],
        "files": {name: str(path) for name, path in files.items()},
    }


def collect_trials(sweep_dir: Path) -> list[Trial]:
    """One Trial per job folder, plus jobs whose folder is gone but whose record remains."""
    records = {}
    for path in sorted((sweep_dir / RECORDS_DIR).glob("*.json")):
        record = json.loads(path.read_text())
        records[str(Path(record["run_dir"]).resolve())] = record
    trials = []
    for path in sorted(sweep_dir.glob("**/.hydra/overrides.yaml")):
        run_dir = path.parent.parent
        record = records.pop(str(run_dir.resolve()), {})
        summary_path = run_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        job = record.get("job", int(run_dir.name) if run_dir.name.isdigit() else len(trials))
        overrides = yaml.safe_load(path.read_text()) or []
        trials.append(_trial(job, overrides, summary, record, str(run_dir)))
    for record in records.values():
        trials.append(_trial(record["job"], record["overrides"], {}, record, record["run_dir"]))
    return sorted(trials, key=lambda t: t.job)


def _trial(job: int, overrides: list[str], summary: dict, record: dict, run_dir: str) -> Trial:
    goal_metric = (summary.get("goal") or {}).get("metric")
    value = summary.get("objective", (summary.get("metrics") or {}).get(goal_metric))
    error = summary.get("error") or record.get("error") or ""
    if not summary:
        error = error or "no summary.json: the run stopped before training (see its log)"
    status = summary.get("status", "failed")
    return Trial(job, overrides, status, _finite(value), summary, run_dir, error)


def find_goal(sweep_dir: Path, trials: list[Trial]) -> Goal:
    """The goal from any trial's summary.json, else from a job's saved config."""
    for trial in trials:
        if trial.summary.get("goal"):
            return Goal(**trial.summary["goal"])
    for path in sweep_dir.glob("**/.hydra/config.yaml"):
        node = (yaml.safe_load(path.read_text()) or {}).get("goal")
        if node:
            return Goal(str(node["metric"]), str(node["mode"]), float(node["target"]))
    return Goal("objective", "max", math.nan)


def swept_keys(trials: list[Trial], sweeper_params: dict) -> list[str]:
    """Keys whose value differs between jobs or that the sweeper searches; not fixed overrides."""
    keys = dict.fromkeys(key for trial in trials for key in trial.params)
    return [
        key for key in keys if key in sweeper_params or len({t.params.get(key) for t in trials}) > 1
    ]


def seed_groups(ranked: list[Trial], keys: list[str], goal: Goal) -> list[dict[str, Any]]:
    """Trials that differ only in `seed`, grouped, with mean and std of the objective; best first."""
    if "seed" not in keys:
        return []
    hyper = [key for key in keys if key != "seed"]
    grouped: dict[tuple, list[Trial]] = {}
    for trial in ranked:
        grouped.setdefault(tuple(trial.params.get(k) for k in hyper), []).append(trial)
    if all(len(members) < 2 for members in grouped.values()):
        return []
    groups = []
    for values, members in grouped.items():
        scores = [t.objective for t in members if t.objective is not None]
        mean = statistics.fmean(scores) if scores else None
        std = statistics.stdev(scores) if len(scores) > 1 else None
        params = dict(zip(hyper, values, strict=True))
        groups.append({"params": params, "trials": members, "mean": mean, "std": std})
    return sorted(groups, key=lambda g: _rank(g["mean"], goal))


def edge_warnings(
    trials: list[Trial], keys: list[str], best: dict[str, str], sweeper_params: dict
) -> list[str]:
    """Numeric hyperparameters whose best value lies in the outer 10% of the range searched."""
    warnings = []
    for key in keys:
        value = _number(best.get(key))
        tried = [v for t in trials if (v := _number(t.params.get(key))) is not None]
        if key == "seed" or value is None or len(set(tried)) < 2:
            continue
        bounds = tried + [float(n) for n in NUMBER.findall(str(sweeper_params.get(key, "")))]
        low, high = min(bounds), max(bounds)
        if _is_log_scale(key, trials, sweeper_params) and low > 0:
            value, low, high = math.log(value), math.log(low), math.log(high)
        position = (value - low) / (high - low)
        # a range that starts at 0 (dropout, weight decay) has nothing below it to try
        if position <= EDGE and low != 0:
            side = "low"
        elif position >= 1 - EDGE:
            side = "high"
        else:
            continue
        text = best[key]
        warnings.append(
            f"the best {key} ({text}) is at the {side} edge of the range searched: extend the range"
        )
    return warnings


def reproduce(trial: Trial, command: str) -> str:
    """The single run (not -m) that repeats this trial."""
    return " ".join([command, *(shlex.quote(item) for item in trial.overrides)])


def write_csv(path: Path, trials: list[Trial], keys: list[str], goal: Goal) -> None:
    names = {key for trial in trials for key in trial.metrics}
    ours = [goal.at(split) for split in ("train", "val", "test")]
    metrics = [m for m in ours if m in names] + sorted(names - set(ours))
    extra = ["objective_std"] if any("objective_std" in t.summary for t in trials) else []
    header = ["job", *keys, "objective", *extra, *metrics, "status", "verdict", "goal_met"]
    header += ["best_epoch", "epochs_trained", "wall_time_s", "overrides", "run_dir", "error"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for t in trials:
            details = [t.summary.get(k) for k in ("verdict", "goal_met", "best_epoch")]
            details += [t.summary.get("epochs_trained"), t.summary.get("wall_time_s")]
            writer.writerow(
                [t.job, *(t.params.get(k) for k in keys), t.objective]
                + [t.summary.get(k) for k in extra]
                + [t.metrics.get(m) for m in metrics]
                + [t.status, *details, " ".join(t.overrides), t.run_dir, t.error]
            )


def markdown(
    sweep_dir: Path, ranked: list[Trial], best: Trial | None, warnings: list[str], ctx: dict
) -> str:
    goal, keys, counts = ctx["goal"], ctx["keys"], ctx["counts"]
    met = sum(bool(t.summary.get("goal_met")) for t in ranked)
    lines = [f"# Sweep summary: {sweep_dir.name}", "", f"Sweep directory: `{sweep_dir}`", ""]
    lines += [
        f"Goal {goal.describe()}. {len(ranked)} trials: {counts['completed']} completed, "
        f"{counts['failed']} failed, {counts['diverged']} diverged; {met} met the goal.",
        "",
        "## Best trial",
        "",
    ]
    if best:
        splits = ", ".join(
            f"{s} {_fmt(best.metrics.get(goal.at(s)))}" for s in ("train", "val", "test")
        )
        lines += [
            f"Job {best.job}: objective {goal.metric} = {_fmt(best.objective)} ({splits}); "
            f"verdict {best.summary.get('verdict', '—')}; run dir `{best.run_dir}`.",
            "",
            "Reproduce it (a single run):",
            "",
            "```bash",
            reproduce(best, ctx["command"]),
            "```",
            "",
        ]
    else:
        lines += ["No trial produced a finite objective.", ""]
    if warnings:
        lines += ["## Warnings", "", *(f"- {w}" for w in warnings), ""]
    metrics = [goal.at(split) for split in ("train", "val", "test")]
    header = ["rank", "job", *keys, "objective", *metrics, "status", "verdict", "time (s)"]
    lines += ["## Trials, best first", "", *_table_head(header)]
    for rank, t in enumerate(ranked, 1):
        objective = _fmt(t.objective)
        if t.summary.get("objective_std") is not None:
            objective += f" ± {_fmt(t.summary['objective_std'])}"
        cells = [rank, t.job, *(t.params.get(k, "") for k in keys), objective]
        cells += [_fmt(t.metrics.get(m)) for m in metrics]
        cells += [t.status, t.summary.get("verdict", "—"), _fmt(t.summary.get("wall_time_s"))]
        lines.append(_row(cells))
    if ctx["groups"]:
        hyper = [key for key in keys if key != "seed"]
        lines += ["", "## Mean ± std over seeds, best first", ""]
        lines += _table_head([*hyper, "seeds", "trials (ok / all)", f"{goal.metric} mean ± std"])
        for g in ctx["groups"]:
            seeds = ",".join(str(t.params.get("seed")) for t in g["trials"])
            ok = sum(t.objective is not None for t in g["trials"])
            score = f"{_fmt(g['mean'])} ± {_fmt(g['std'])}"
            lines.append(_row([*g["params"].values(), seeds, f"{ok} / {len(g['trials'])}", score]))
    return "\n".join(lines) + "\n"


def plot_search(
    path: Path,
    ranked: list[Trial],
    best: Trial | None,
    keys: list[str],
    log_keys: set,
    goal: Goal,
    title: str,
) -> None:
    """One panel per hyperparameter (objective against value), then the best 3 trials' curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [key for key in keys if key != "seed"]
    ncols = min(len(panels) + 1, 3)
    nrows = math.ceil((len(panels) + 1) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.2 * ncols, 4.2 * nrows), squeeze=False, constrained_layout=True
    )
    for ax, key in zip(axes.flat, panels, strict=False):
        _plot_hyperparameter(ax, key, ranked, best, key in log_keys, goal)
    _plot_best_curves(axes.flat[len(panels)], ranked, goal)
    for ax in axes.flat[len(panels) + 1 :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=9)
    fig.suptitle(f"{title}: objective {goal.metric} ({goal.mode}imize)", fontsize=13)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_hyperparameter(
    ax: Any, key: str, ranked: list[Trial], best: Trial | None, log_x: bool, goal: Goal
) -> None:
    raw = [t.params.get(key, "") for t in ranked]
    numeric = all(_number(v) is not None for v in raw)
    labels = sorted(set(raw), key=lambda v: (_number(v) is None, _number(v) or 0, v))
    x = [_number(v) if numeric else labels.index(v) for v in raw]
    ok = [(xi, t.objective) for xi, t in zip(x, ranked, strict=True) if t.status == "completed"]
    if ok:
        ax.scatter(*zip(*ok, strict=True), s=40, color="tab:blue", alpha=0.8, label="trial")
    bad = [(xi, t) for xi, t in zip(x, ranked, strict=True) if t.status != "completed"]
    if bad:
        # failed trials have no objective: mark them along the bottom of the panel
        ax.scatter(
            [xi for xi, _ in bad],
            [0.04] * len(bad),
            transform=ax.get_xaxis_transform(),
            marker="x",
            s=60,
            color="tab:red",
            label="failed / diverged",
        )
    if best is not None:
        ax.scatter(
            x[ranked.index(best)],
            best.objective,
            marker="*",
            s=300,
            color="gold",
            edgecolor="black",
            zorder=3,
            label=f"best (job {best.job})",
        )
    if math.isfinite(goal.target):
        ax.axhline(goal.target, color="tab:green", linestyle="--", label=f"goal {goal.describe()}")
    if log_x:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel(key + (" (log scale)" if log_x else ""), fontsize=11)
    ax.set_ylabel(f"objective ({goal.metric})", fontsize=11)
    ax.grid(alpha=0.3)


def _plot_best_curves(ax: Any, ranked: list[Trial], goal: Goal) -> None:
    for trial in [t for t in ranked if t.objective is not None][:3]:
        history = read_history(Path(trial.run_dir) / "metrics.csv")
        points = [(e, v[goal.metric]) for e, v in history.items() if goal.metric in v]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=f"job {trial.job}")
    if math.isfinite(goal.target):
        ax.axhline(goal.target, color="tab:green", linestyle="--", label="goal target")
    ax.set_title(f"best 3 trials: {goal.metric} per epoch", fontsize=11)
    ax.set_xlabel("epoch", fontsize=11)
    ax.set_ylabel(goal.metric, fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)


def _is_log_scale(key: str, trials: list[Trial], sweeper_params: dict) -> bool:
    """Declared `tag(log, ...)`; for a plain list of values, positive values spanning 2 decades."""
    spec = str(sweeper_params.get(key, ""))
    if "tag(" in spec or "interval(" in spec:
        return bool(re.search(r"tag\(\s*log", spec))
    values = [_number(t.params.get(key)) for t in trials]
    if not values or any(v is None or v <= 0 for v in values):
        return False
    return max(values) / min(values) >= 100


def _saved_sweeper_params(sweep_dir: Path) -> dict | None:
    """`hydra.sweeper.params` as the sweep saved it (multirun.yaml or a job's hydra.yaml)."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        path = next(iter(sorted(sweep_dir.glob("*/.hydra/hydra.yaml"))), path)
    if not path.is_file():
        return None
    sweeper = ((yaml.safe_load(path.read_text()) or {}).get("hydra") or {}).get("sweeper")
    return (sweeper or {}).get("params")


def _script() -> str:
    script = Path(sys.argv[0]).name
    return f"python {script}" if script.endswith(".py") else script


def _rank(value: float | None, goal: Goal) -> tuple[bool, float]:
    """Sort key: finite values first, best first in the goal's direction."""
    if value is None:
        return (True, 0.0)
    return (False, -value if goal.mode == "max" else value)


def _brief(trial: Trial) -> dict[str, Any]:
    return {"job": trial.job, "objective": trial.objective, "params": trial.params}


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _finite(value: Any) -> float | None:
    number = _number(value) if not isinstance(value, bool) else None
    return number if number is not None and math.isfinite(number) else None


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _table_head(header: list[str]) -> list[str]:
    return [_row(header), _row(["---"] * len(header))]


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _warn(message: str) -> None:
    log.warning(message)
    print(f"practicum: warning: {message}", file=sys.stderr, flush=True)
