"""Grid vs random vs quasi-random search at equal trial budgets (Bergstra & Bengio 2012).

When one hyperparameter matters most, a grid spends its budget repeating its few values of it;
random and Sobol points try a new one in every trial. Optuna's samplers choose the points."""

from __future__ import annotations

import csv
import math
import shutil
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console
from rich.table import Table

from practicum.config.goal import Goal
from practicum.errors import UserError
from practicum.methodology.run_summary import RunSummary, finite_or_none
from practicum.platform.files import open_atomic, save_figure, write_json, write_text

if TYPE_CHECKING:
    from practicum.run.one_run import RunOne

NAME = "grid_vs_random"
console = Console()


@dataclass(frozen=True)
class Dimension:
    name: str  # short name for tables: "lr"
    path: str  # the config key it sets: "optimizer.lr"
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise UserError(f"study.space.{self.name}: need low < high, and low > 0 when log: true")

    def grid(self, n: int) -> list[float]:
        """n evenly spaced values, ends included (evenly in log space for a log dimension)."""
        return (np.geomspace if self.log else np.linspace)(self.low, self.high, n).tolist()


def read_space(cfg: DictConfig) -> list[Dimension]:
    space = [Dimension(str(k), **v) for k, v in OmegaConf.to_container(cfg.study.space).items()]
    for dim in space:
        if OmegaConf.select(cfg, dim.path, default=KeyError) is KeyError:
            raise UserError(f"study.space.{dim.name}.path={dim.path!r} is not a key of the config")
    if not space:
        raise UserError("study.space is empty: add lr: {path: optimizer.lr, low: 1e-5, high: 0.1}")
    return space


def make_sampler(method: str, space: list[Dimension], n_trials: int, seed: int):
    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if method == "quasi_random":
        # Optuna learns the space from the first trial, which its independent sampler draws (the
        # same point as random search's first); later trials follow one scrambled Sobol sequence.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(
            qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False
        )
    if method == "grid":
        per_dim = round(n_trials ** (1 / len(space)))
        if per_dim ** len(space) != n_trials:
            grids = f"{per_dim ** len(space)} or {(per_dim + 1) ** len(space)}"
            raise UserError(f"study.n_trials={n_trials} is not a full grid: use e.g. {grids}")
        return optuna.samplers.GridSampler({d.name: d.grid(per_dim) for d in space}, seed=seed)
    raise UserError(f"study.methods: unknown method {method!r}: use grid, random or quasi_random")


def trial_config(cfg: DictConfig, point: dict[str, float], space, seed: int, out: Path):
    """One trial's run config: the study's config at this point, with short and quiet settings."""
    trial = cfg.copy()
    with open_dict(trial):
        for dim in space:
            OmegaConf.update(trial, dim.path, point[dim.name], force_add=True)
        trial.seed = seed
        trial.paths.output_dir = str(out)
        trial.trainer.max_epochs = int(cfg.study.max_epochs)
        trial.trainer.enable_model_summary = trial.trainer.enable_progress_bar = False
        trial.callbacks.progress_bar = trial.diagnosis.baseline_model = None
    return trial


def run_trial(cfg: DictConfig, goal: Goal, run_one: RunOne) -> dict[str, Any]:
    """Train one trial; a crash is recorded as a failed trial, not the end of the study."""
    out, started = Path(cfg.paths.output_dir), time.perf_counter()
    try:
        # the study prints one line per trial; the trial's own tables stay quiet
        value = finite_or_none(run_one(cfg, quiet=True))
        status = "completed" if value is not None else "diverged"
    except UserError:
        raise
    except Exception as exc:
        value, status = None, f"failed: {type(exc).__name__}"
    summary = RunSummary.read(out)
    metrics = summary.metrics if summary is not None else {}
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # the point is in the CSV: rerun it
    row = {goal.metric: value, goal.at("test"): metrics.get(goal.at("test")), "status": status}
    return row | {"wall_time_s": round(time.perf_counter() - started, 2), "run_dir": str(out)}


def run_one_study(
    cfg: DictConfig, method: str, study_seed: int, space, goal: Goal, run_one: RunOne
) -> list[dict]:
    """`study.n_trials` trials proposed by one method's sampler; one row per trial."""
    n_trials, rows = int(cfg.study.n_trials), []
    sampler = make_sampler(method, space, n_trials, study_seed)
    study = optuna.create_study(direction=f"{goal.mode}imize", sampler=sampler)

    # study.optimize, not ask/tell: GridSampler raises on its last tell (optuna issue #4121)
    def objective(trial: optuna.Trial) -> float | None:
        point = {d.name: trial.suggest_float(d.name, d.low, d.high, log=d.log) for d in space}
        i = trial.number + 1
        out = Path(cfg.paths.output_dir) / method / f"seed_{study_seed}" / f"trial_{i}"
        # trials of one study seed train with the same seed, whatever the method
        trial_cfg = trial_config(cfg, point, space, cfg.seed + study_seed, out)
        result = run_trial(trial_cfg, goal, run_one)
        value, best = result[goal.metric], rows[-1]["best_so_far"] if rows else None
        if value is not None and (best is None or goal.better(value, best)):
            best = value
        row = {"method": method, "study_seed": study_seed, "trial": i, **point, **result}
        rows.append(row | {"best_so_far": best})
        shown = " ".join(f"{name}={x:.3g}" for name, x in point.items())
        line = f"{method} seed {study_seed} trial {i}/{n_trials}: {shown} -> {goal.metric} "
        line += f"{_fmt(value)} (best {_fmt(best)}, {result['wall_time_s']:.1f} s)"
        console.print(line, highlight=False, soft_wrap=True)
        return value  # None marks the trial failed for the sampler

    study.optimize(objective, n_trials=n_trials)
    return rows


def run_study(cfg: DictConfig, run_one: RunOne) -> float | None:
    """Run every method for every study seed; write CSV, JSON, table and plot; print the table."""
    goal, space = Goal.from_config(cfg.goal), read_space(cfg)
    n_trials, seeds = int(cfg.study.n_trials), [int(s) for s in cfg.study.study_seeds]
    out_dir, started = Path(cfg.paths.output_dir), time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    methods = [str(method) for method in cfg.study.methods]
    for method in methods:
        make_sampler(method, space, n_trials, 0)  # a bad method or grid size fails before training
    rows = [
        row
        for m in methods
        for s in seeds
        for row in run_one_study(cfg, m, s, space, goal, run_one)
    ]
    summary = summarize(rows, space, goal, seeds)
    wall = round(time.perf_counter() - started, 1)
    write_outputs(out_dir, rows, summary, space, goal, n_trials, seeds, wall)
    print_table(summary, space, goal, console)
    console.print(f"Study written to {out_dir} in {wall:.0f} s", soft_wrap=True)
    return summary[0]["best_single"] if summary else None


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def summarize(rows, space: list[Dimension], goal: Goal, seeds: list[int]) -> list[dict[str, Any]]:
    """One entry per method, best first: the best objective of each study, as mean ± std."""
    pick, summary = (max if goal.mode == "max" else min), []
    for method in dict.fromkeys(r["method"] for r in rows):
        ours = [r for r in rows if r["method"] == method]
        studies = [[r for r in ours if r["study_seed"] == seed] for seed in seeds]
        done = [[r for r in study if r[goal.metric] is not None] for study in studies]
        chosen = [pick(trials, key=lambda r: r[goal.metric]) for trials in done if trials]
        bests = [r[goal.metric] for r in chosen]
        tests = [r[goal.at("test")] for r in chosen if r[goal.at("test")] is not None]
        distinct = {d.name: [len({r[d.name] for r in study}) for study in studies] for d in space}
        summary.append(
            {
                "method": method,
                "best_mean": statistics.fmean(bests) if bests else None,
                "best_std": statistics.pstdev(bests) if bests else None,
                "best_single": pick(bests) if bests else None,
                "test_of_chosen_mean": statistics.fmean(tests) if tests else None,
                "distinct_values": {name: statistics.fmean(n) for name, n in distinct.items()},
                "failed_trials": sum(r[goal.metric] is None for study in studies for r in study),
            }
        )
    sign = -1 if goal.mode == "max" else 1  # best first, methods without a result last
    summary.sort(key=lambda s: math.inf if s["best_mean"] is None else sign * s["best_mean"])
    return summary


def table_cells(summary, space: list[Dimension], goal: Goal) -> tuple[list[str], list[list[str]]]:
    """The study's table, one row per method: (column names, rows of cells)."""
    columns = ["method", f"best {goal.metric}", goal.at("test")]
    columns += [f"distinct {d.name}" for d in space] + ["failed"]
    rows = []
    for s in summary:
        found = "—" if s["best_mean"] is None else f"{s['best_mean']:.4f} ± {s['best_std']:.4f}"
        cells = [s["method"], found, _fmt(s["test_of_chosen_mean"])]
        cells += [f"{s['distinct_values'][d.name]:g}" for d in space] + [str(s["failed_trials"])]
        rows.append(cells)
    return columns, rows


def markdown_table(summary, space: list[Dimension], goal: Goal, n_trials, seeds) -> str:
    test = goal.at("test")
    columns, rows = table_cells(summary, space, goal)
    lines = [
        f"{n_trials} trials per study, {len(seeds)} study seeds. best: the best trial of each study, "
        f"mean ± std; {test}: of those trials; distinct: values tried per study; failed: failed or diverged.",
        "",
        "| " + " | ".join(columns) + " |",
        "|---|" + "---:|" * (len(columns) - 1),
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def print_table(summary, space: list[Dimension], goal: Goal, console: Console) -> None:
    """The study's table on the terminal: on a narrow one the names wrap, the numbers stay whole."""
    columns, rows = table_cells(summary, space, goal)
    table = Table(title=f"{NAME}: best of each study, mean ± std", title_justify="left")
    table.add_column(columns[0], overflow="fold")
    # `mean ± std` may wrap at its spaces; the other numbers never wrap, so their names do
    table.add_column(columns[1].replace(" ", "\n"), justify="right")
    for column in columns[2:]:
        table.add_column(column.replace(" ", "\n"), justify="right", no_wrap=True)
    for cells in rows:
        table.add_row(*cells)
    console.print(table)


def write_outputs(out_dir: Path, rows, summary, space, goal: Goal, n_trials, seeds, wall) -> None:
    with open_atomic(out_dir / f"{NAME}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    content = dict(goal=goal.as_dict(), n_trials=n_trials, study_seeds=seeds, wall_time_s=wall)
    content |= {"space": [asdict(d) for d in space], "summary": summary, "trials": rows}
    write_json(out_dir / f"{NAME}.json", content)
    write_text(out_dir / f"{NAME}.md", markdown_table(summary, space, goal, n_trials, seeds))
    plot(out_dir / f"{NAME}.png", rows, space[0], goal, n_trials, seeds)


def plot(path: Path, rows, key: Dimension, goal: Goal, n_trials: int, seeds: list[int]) -> None:
    """Left: best found against trials spent. Right: the objective against the key dimension."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig, steps = Figure(figsize=(12, 4.8), layout="tight"), np.arange(1, n_trials + 1)
    left, right = fig.subplots(1, 2)
    for method, marker in zip(dict.fromkeys(r["method"] for r in rows), "osx^", strict=False):
        ours = [r for r in rows if r["method"] == method]
        # one row per study seed; None (no trial of that study has succeeded yet) becomes NaN
        curves = np.array(
            [[r["best_so_far"] for r in ours if r["study_seed"] == s] for s in seeds], dtype=float
        )
        (line,) = left.plot(steps, np.nanmean(curves, axis=0), marker=marker, label=method)
        band = np.nanpercentile(curves, [25, 75], axis=0)
        left.fill_between(steps, *band, color=line.get_color(), alpha=0.15)
        x, y = [r[key.name] for r in ours], np.array([r[goal.metric] for r in ours], dtype=float)
        right.scatter(x, y, marker=marker, color=line.get_color(), alpha=0.6, label=method)
    left.set(xticks=steps, xlabel="trials spent", ylabel=f"best {goal.metric} so far")
    left.set_title(f"Best found: mean of {len(seeds)} study seeds, band: quartiles")
    right.set(
        xlabel=f"{key.name} ({key.path})", ylabel=goal.metric, title="Every trial, every seed"
    )
    right.set_xscale("log" if key.log else "linear")
    left.legend()  # the right panel uses the same colors and markers
    for ax in (left, right):
        ax.grid(alpha=0.3)
    save_figure(fig, path, dpi=120)
