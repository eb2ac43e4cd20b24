"""A sweep directory read back: its trials (overrides and summary.json of each), the goal, the
swept keys and the declared search space. Reads only what each trial left on disk, so it works
with every sweeper and launcher, and after the launching process died."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

from practicum.config import command_line as overrides
from practicum.config.goal import Goal
from practicum.methodology.run_summary import STATUSES, RunSummary

SPLITS = ("train", "val", "test")
# a trial without summary.json: still running (the summary was rebuilt while its job ran), or its
# process was lost with the launcher that would have recorded it
UNFINISHED = "unfinished"
TRIAL_STATUSES = (*STATUSES, UNFINISHED)
EDGE = 0.1  # the outer 10% of a searched range counts as its edge


@dataclass
class Trial:
    job: int
    overrides: list[str]
    summary: RunSummary | None  # None when the run died before writing summary.json
    run_dir: Path

    @property
    def params(self) -> dict[str, str]:
        """The trial's overrides as written: `{"optimizer.lr": "0.003"}`."""
        return overrides.text_values(self.overrides)

    def get(self, name: str, default: Any = None) -> Any:
        """A field of the trial's summary; `default` when it has none or the field is unset."""
        value = getattr(self.summary, name, None)
        return default if value is None else value

    @property
    def status(self) -> str:
        return self.summary.status if self.summary else UNFINISHED

    @property
    def metrics(self) -> dict[str, float]:
        return self.summary.metrics if self.summary else {}

    @property
    def objective(self) -> float | None:
        """What the sweeper got: the summary's finite objective."""
        return number(self.summary.objective, finite=True) if self.summary else None


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
        summary = RunSummary.read(run_dir)
        trials.append(Trial(job, yaml.safe_load(path.read_text()) or [], summary, run_dir))
    return sorted(trials, key=lambda t: t.job)


def find_goal(trials: list[Trial]) -> Goal:
    """The goal from any trial's summary.json (a failed trial's too)."""
    for node in (t.summary.goal for t in trials if t.summary):
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
    for key in [k for k in keys if k != "seed" and number(best.get(k)) is not None]:
        tried = [v for t in trials if (v := number(t.params.get(key))) is not None]
        declared = declared_values(key, sweeper_params)
        low, high = min(tried + declared), max(tried + declared)
        if len(set(tried)) < 2:
            continue
        scale = math.log if key in log_keys and low > 0 else float
        position = (scale(number(best[key])) - scale(low)) / (scale(high) - scale(low))
        # a range that starts at 0 (dropout, weight decay) has nothing below it to try
        side = "low" if position <= EDGE and low != 0 else "high" if position >= 1 - EDGE else ""
        if side:
            warnings.append(
                f"the best {key} ({best[key]}) is at the {side} edge of the range searched: "
                "extend the range"
            )
    return warnings


def declared_sweep(key: str, sweeper_params: dict) -> Any:
    """The sweep declared for `key` in hydra.sweeper.params, parsed by Hydra's override grammar
    (`tag(log, interval(1e-4, 1e-1))` -> IntervalSweep); None when none is declared."""
    spec = sweeper_params.get(key)
    if spec is None:
        return None
    try:
        return overrides.parse([f"{key}={spec}"])[0].value()
    except Exception:  # not an override the grammar knows: nothing declared we can read
        return None


def declared_values(key: str, sweeper_params: dict) -> list[float]:
    """The numbers that bound or list the declared sweep of `key`: an interval's ends, a range's
    ends, a choice's values."""
    sweep = declared_sweep(key, sweeper_params)
    if isinstance(sweep, IntervalSweep):
        found = [sweep.start, sweep.end]
    elif isinstance(sweep, RangeSweep):
        found = [sweep.start, sweep.stop]
    elif isinstance(sweep, ChoiceSweep):
        found = sweep.list
    else:
        found = [] if sweep is None else [sweep]
    return [v for v in map(number, found) if v is not None]


def _is_log_scale(key: str, trials: list[Trial], sweeper_params: dict) -> bool:
    """Declared `tag(log, ...)`; for a plain list of values, positive values spanning 2 decades."""
    sweep = declared_sweep(key, sweeper_params)
    if isinstance(sweep, IntervalSweep):
        return "log" in sweep.tags
    values = [number(t.params.get(key)) for t in trials]
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


def number(text: Any, finite: bool = False) -> float | None:
    try:
        value = None if isinstance(text, bool) else float(text)
    except (TypeError, ValueError):
        return None
    return value if value is None or not finite or math.isfinite(value) else None


def fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def short(text: str) -> str:
    """A long number as 4 significant digits, for tables and axes (the command keeps all)."""
    value = number(text)
    return text if value is None or len(text) <= 8 else f"{value:.4g}"
