"""search.png: the objective against each swept hyperparameter, and the best trials' curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hydra.core.override_parser.types import IntervalSweep

from practicum.methodology.history import read_history
from practicum.search.sweep import Sweep, declared_sweep, fmt, number, short

TRIAL_STYLE = dict(s=45, color="tab:blue", alpha=0.8, label="trial")
BEST_STYLE = dict(marker="*", s=320, color="gold", edgecolor="black", zorder=3, label="best trial")
FAILED_STYLE = dict(marker="x", s=70, color="tab:red", label="failed / diverged (no objective)")
TARGET_STYLE = dict(color="tab:green", linestyle="--")


def plot_search(sweep: Sweep, path: Path) -> None:
    """One panel per hyperparameter (objective against value), then the best 3 trials' curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [key for key in sweep.keys if key != "seed"]
    ncols = min(len(panels) + 1, 3)
    nrows = math.ceil((len(panels) + 1) / ncols)
    size = (5.4 * ncols, 4.4 * nrows + 0.6)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, layout="constrained")
    for ax, key in zip(axes.flat, panels, strict=False):
        _plot_hyperparameter(ax, key, sweep)
    _plot_best_curves(axes.flat[len(panels)], sweep)
    for ax in axes.flat[len(panels) + 1 :]:
        ax.set_visible(False)
    legend = {}
    for ax in axes.flat[: len(panels)]:
        legend.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    if legend:
        fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncols=4, fontsize=10)
    goal = sweep.goal
    fig.suptitle(f"Sweep {sweep.dir.name}: objective {goal.metric} ({goal.mode}imize)", fontsize=13)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_hyperparameter(ax: Any, key: str, sweep: Sweep) -> None:
    raw = [t.params.get(key, "") for t in sweep.ranked]
    numeric = all(number(v) is not None for v in raw)
    ticks = sorted(set(raw), key=lambda v: (number(v) is None, number(v) or 0, v))
    x = [number(v) if numeric else ticks.index(v) for v in raw]
    done = [(xi, t) for xi, t in zip(x, sweep.ranked, strict=True) if t.objective is not None]
    failed = [xi for xi, t in zip(x, sweep.ranked, strict=True) if t.objective is None]
    if done:
        ax.scatter([xi for xi, _ in done], [t.objective for _, t in done], **TRIAL_STYLE)
    if sweep.best is not None:
        ax.scatter(x[sweep.ranked.index(sweep.best)], sweep.best.objective, **BEST_STYLE)
    if math.isfinite(sweep.goal.target):
        ax.axhline(sweep.goal.target, label=f"goal {sweep.goal.describe()}", **TARGET_STYLE)
    if failed:  # they have no objective: a row of crosses below the lowest trial
        low, high = ax.get_ylim()
        ax.set_ylim(low - 0.15 * (high - low), high)
        ax.scatter(failed, [low - 0.08 * (high - low)] * len(failed), **FAILED_STYLE)
    if key in sweep.log_keys:
        ax.set_xscale("log")
    declared = declared_sweep(key, sweep.params)
    if isinstance(declared, IntervalSweep):  # the whole range searched: where did trials fall?
        low, high = sorted((float(declared.start), float(declared.end)))
        log_x = key in sweep.log_keys
        pad = (high / low) ** 0.04 if log_x else 0.04 * (high - low)
        ax.set_xlim(low / pad, high * pad) if log_x else ax.set_xlim(low - pad, high + pad)
    elif len(ticks) <= 8:  # a grid or a choice: label the values tried
        ax.set_xticks([number(v) if numeric else i for i, v in enumerate(ticks)], map(short, ticks))
        ax.minorticks_off()
    ax.set_xlabel(key + (" (log scale)" if key in sweep.log_keys else ""), fontsize=11)
    ax.set_ylabel(f"objective ({sweep.goal.metric})", fontsize=11)
    ax.grid(alpha=0.3)


def _plot_best_curves(ax: Any, sweep: Sweep) -> None:
    metric = sweep.goal.metric
    for trial in [t for t in sweep.ranked if t.objective is not None][:3]:
        # search.repeats=N: the trial's own runs are in seed_<s>/; show the first seed's
        seeds = (trial.summary.seeds if trial.summary else None) or [{}]
        run_dir = Path(seeds[0].get("run_dir", trial.run_dir))
        history = read_history(run_dir / "metrics.csv")
        epochs = [epoch for epoch, values in history.items() if metric in values]
        label = f"job {trial.job} ({fmt(trial.objective)})"
        ax.plot(epochs, [history[e][metric] for e in epochs], marker="o", label=label)
    if math.isfinite(sweep.goal.target):
        ax.axhline(sweep.goal.target, label="goal target", **TARGET_STYLE)
    ax.set_title(f"best 3 trials: {metric} per epoch", fontsize=11)
    ax.xaxis.get_major_locator().set_params(integer=True, min_n_ticks=1)
    ax.set_xlabel("epoch", fontsize=11)
    ax.set_ylabel(metric, fontsize=11)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=9)
