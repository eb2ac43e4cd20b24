"""Do you have enough training data? The learning curve (Goodfellow et al. 2016, §11.3): validation
error against training examples on log axes, a power law fitted to it, extrapolated to the goal.

Plain values in, plain values out: the mode that trains the points is search/data_size.py. The
curve is a dict, written as data_curve.json; `predicted_error(curve, n)` reads the fit from it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from practicum.config.goal import Goal
from practicum.errors import UserError
from practicum.platform.files import save_figure

# The curve has flattened when the fit as a whole, or its last step (the last doubling of the
# data), cuts the error by less than 2^-0.05, about 3.5%. Why this slope: at it, halving the error
# takes 2^20 times the data, more than any collection can add; the flattest learning curves
# measured on real tasks fall with exponents of about 0.07 (Hestness et al. 2017, "Deep learning
# scaling is predictable, empirically"). Why the last step as well as the fit: a curve bends
# towards its floor (the error no amount of data removes), and the bend shows first at the largest
# sizes, while a line through every point still promises the slope of the small ones. Why a flat
# last step counts only when the largest size sits above the fitted line by more than NOISE_SE of
# its standard errors: one step is two noisy points; on 270 validation examples an error of 0.05
# is known to about ±0.013, and a step that merely wobbled must not say "more data will not help".
FLAT_SLOPE = 0.05
NOISE_SE = 2.0
# the fitted line reaches this many times the full size when the goal needs no more data or is
# out of reach, and never goes beyond FARTHEST times it
EXTEND = 4.0
FARTHEST = 1000.0


def goal_error(goal: Goal, value: float | None) -> float | None:
    """The error a goal's metric stands for: 1 - a share (accuracy, F1), the value of a loss."""
    if value is None or not math.isfinite(value):
        return None
    return 1.0 - value if goal.mode == "max" else value


def curve_sizes(fractions: Sequence[float], full: int, classes: int) -> list[int]:
    """The training-set sizes of `fractions` of `full` examples; a size too small to train (fewer
    than two examples, or than two per class) or fewer than two distinct sizes is one line."""
    sizes = sorted({max(1, round(f * full)) for f in fractions})
    least = max(2, 2 * classes)
    if sizes[0] < least:
        per_class = f", two per class of {classes}" if classes > 1 else ""
        raise UserError(
            f"tune.fractions: the smallest, {min(fractions):g} of {full} training examples, keeps "
            f"{sizes[0]}, fewer than {least}{per_class}: raise it to "
            f"{math.ceil(least / full * 1000) / 1000:g} or more"
        )
    if len(sizes) < 2:
        raise UserError(
            f"tune.fractions={list(fractions)} of {full} training examples give one size only "
            f"({sizes[0]}): a curve needs two sizes at least, e.g. tune.fractions=[0.25,0.5,1.0]"
        )
    return sizes


def fit_power_law(
    sizes: Sequence[float], errors: Sequence[float], floor: float
) -> dict[str, float]:
    """err = a·n^(-b) by least squares on log err against log n. Two parameters: a third (the
    floor of err = c + a·n^(-b)) is poorly pinned by four noisy points and swings the forecast;
    errors below `floor` (zero errors on the validation split) count as `floor`."""
    log_n = np.log(np.asarray(sizes, dtype=float))
    log_err = np.log(np.maximum(np.asarray(errors, dtype=float), floor))
    slope, intercept = np.polyfit(log_n, log_err, 1)
    return {"a": float(math.exp(intercept)), "b": float(-slope)}


def predicted_error(curve: Mapping[str, Any], n: float) -> float | None:
    """The error the fit in `curve` (data_curve.json's content) predicts at `n` examples."""
    if curve.get("a") is None or curve.get("b") is None:
        return None
    return float(curve["a"] * n ** -curve["b"])


def examples_for(curve: Mapping[str, Any], error: float) -> int | None:
    """The training examples the fit needs to bring the error down to `error` (None: never)."""
    if curve.get("a") is None or curve["b"] <= 0 or error <= 0:
        return None
    return math.ceil((curve["a"] / error) ** (1.0 / curve["b"]))


def error_floor(goal: Goal, val_examples: int) -> float:
    """The smallest error the log axes hold: half an example of the validation split for a share
    (no mistakes means an error below 1/n, not zero), a tiny loss otherwise."""
    return 0.5 / max(val_examples, 1) if goal.mode == "max" else 1e-6


def standard_error(goal: Goal, values: Sequence[float | None], val_examples: int) -> float:
    """The noise of a size's mean error: the seeds' spread, and for a share the sampling of the
    validation examples (binomial), which every seed shares."""
    finite = [v for v in values if v is not None]
    seeds = statistics.stdev(finite) / math.sqrt(len(finite)) if len(finite) > 1 else 0.0
    mean = statistics.fmean(finite) if finite else 0.0
    sample = math.sqrt(mean * (1 - mean) / max(val_examples, 1)) if goal.mode == "max" else 0.0
    return math.hypot(seeds, sample)


def learning_curve(
    sizes: Sequence[int],
    errors: Sequence[Sequence[float | None]],
    seeds: Sequence[int],
    goal: Goal,
    val_examples: int,
    available: int | None = None,
) -> dict[str, Any]:
    """The curve as data_curve.json holds it: per-size, per-seed errors, the fit and its verdict.
    `full_size` is the largest size trained; `available`, the training split it was cut from."""
    floor = error_floor(goal, val_examples)
    means = [_mean(row) for row in errors]
    fitted = [(n, m) for n, m in zip(sizes, means, strict=True) if m is not None]
    fit = fit_power_law(*zip(*fitted, strict=True), floor) if len(fitted) >= 2 else {}
    target_error = goal_error(goal, goal.target)
    last_slope = _slope(fitted[-2:], floor) if len(fitted) >= 2 else None
    curve = {
        "goal": goal.as_dict(),
        "target_error": target_error,
        "sizes": list(sizes),
        "seeds": list(seeds),
        "errors": [list(row) for row in errors],
        "mean_errors": means,
        "val_examples": val_examples,
        "floor": floor,
        "fit": "error = a * n^-b, least squares in log-log on the mean errors",
        "a": fit.get("a"),
        "b": fit.get("b"),
        "last_slope": last_slope,
        "full_size": sizes[-1],
        "available": available or sizes[-1],
        "goal_met_at_full_size": means[-1] is not None and means[-1] <= target_error,
    }
    curve["flattened"] = _flattened(curve, goal, errors)
    # a flat fit has no size to offer: (a / target)^(1/b) runs off to infinity or to zero
    curve["examples_for_goal"] = None if curve["flattened"] else examples_for(curve, target_error)
    return curve


def _flattened(curve: dict[str, Any], goal: Goal, errors: Sequence[Sequence[float | None]]) -> bool:
    """The fit is flat, or the last step is flat and its end sits clearly above the fitted line."""
    if curve["b"] is None:
        return False
    if curve["b"] < FLAT_SLOPE:
        return True
    if curve["last_slope"] >= FLAT_SLOPE:
        return False
    last = max(i for i, m in enumerate(curve["mean_errors"]) if m is not None)
    above = curve["mean_errors"][last] - predicted_error(curve, curve["sizes"][last])
    return above > NOISE_SE * standard_error(goal, errors[last], curve["val_examples"])


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(finite) if finite else None


def _slope(points: Sequence[tuple[int, float]], floor: float) -> float:
    """-d log err / d log n between two points: the b of the curve's last step."""
    (n0, e0), (n1, e1) = points
    slope = -(math.log(max(e1, floor)) - math.log(max(e0, floor))) / math.log(n1 / n0)
    return slope + 0.0  # no -0.0 in the report


def verdict(curve: Mapping[str, Any]) -> str:
    """Whether more data will reach the goal, in one sentence."""
    goal, full, need = curve["goal"], curve["full_size"], curve["examples_for_goal"]
    target = f"{goal['metric']} {'>=' if goal['mode'] == 'max' else '<='} {goal['target']:g}"
    if curve["a"] is None:
        return "Too few sizes trained to a finite error to fit a curve: see the runs' reports."
    if curve["goal_met_at_full_size"]:
        return (
            f"The goal ({target}) is already met at {_full(curve)} "
            f"(error {curve['mean_errors'][-1]:.3g} <= target error {curve['target_error']:.3g})."
        )
    if curve["flattened"]:
        at_full = [m for m in curve["mean_errors"] if m is not None][-1]
        return (
            f"The curve has flattened at error {at_full:.3g}, above the target error "
            f"{curve['target_error']:.3g} ({target}): more data will not get there; capacity, "
            "the labels or the features will."
        )
    if need is None:
        return f"The fit never reaches the target error {curve['target_error']:.3g} ({target})."
    return (
        f"The fit predicts about {need} training examples for the goal ({target}), "
        f"{need / full:.3g} times the {full} trained on."
    )


def _full(curve: Mapping[str, Any]) -> str:
    full, available = curve["full_size"], curve["available"]
    if full == available:
        return f"the full size, {full} examples"
    return f"the largest size trained, {full} of {available} examples"


def report_lines(curve: Mapping[str, Any], title: str) -> list[str]:
    """report.md of the mode: the verdict, the fit and the table of errors."""
    lines = [f"# {title}", "", f"**{verdict(curve)}**", ""]
    if curve["a"] is not None:
        lines += [
            f"Fit: error = {curve['a']:.4g} · n^-{curve['b']:.3f} (least squares in log-log on the "
            f"mean error of each size); the last step's slope is {curve['last_slope']:.3f} "
            f"(the curve counts as flattened where a slope is below {FLAT_SLOPE}).",
            "",
        ]
        if curve["last_slope"] < curve["b"] / 2 and not curve["flattened"]:
            lines += [
                "The last step fell more slowly than the fit: the curve is bending, so the "
                "prediction is optimistic.",
                "",
            ]
    lines += ["| examples | " + " | ".join(f"seed {s}" for s in curve["seeds"]) + " | mean |"]
    lines += ["|---" * (len(curve["seeds"]) + 2) + "|"]
    for n, row, mean in zip(curve["sizes"], curve["errors"], curve["mean_errors"], strict=True):
        cells = [_cell(v) for v in (*row, mean)]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return [*lines, "", "![data_curve.png](data_curve.png)", ""]


def _cell(value: float | None) -> str:
    return "failed" if value is None else f"{value:.4f}"


def plot_curve(curve: Mapping[str, Any], path: Path, title: str) -> Path:
    """data_curve.png: each seed's error and the means on log-log axes, the fitted line extended
    to the size the goal needs (or a few times the full size), and the target error."""
    from matplotlib.figure import Figure  # no pyplot: never a window or a display
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.subplots()
    _plot_points(ax, curve)
    full, need, target = curve["full_size"], curve["examples_for_goal"], curve["target_error"]
    if curve["a"] is not None:
        xs = np.geomspace(curve["sizes"][0], _fit_end(curve), 100)
        fit = f"fit: {curve['a']:.3g}·n^-{curve['b']:.2f}"
        ax.plot(xs, curve["a"] * xs ** -curve["b"], "--", color="tab:green", label=fit)
    if target > 0:  # a log axis has no zero
        ax.axhline(target, color="tab:red", linewidth=1.2, label=f"target error {target:.3g}")
    if need is not None:
        ax.axvline(need, color="tab:red", linestyle=":", label=f"goal at ~{need} examples")
    ax.axvline(full, color="grey", linestyle=":", label=f"full size ({full})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    # 0.02 and 300, not 2x10^-2; between the decades only 2, 3 and 5, which leaves room
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    some = FuncFormatter(lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "235" else "")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(some)
    ax.set_xlabel("training examples (log scale)")
    ax.set_ylabel(f"validation error, {curve['goal']['metric']} (log scale)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    state = "flattened" if curve["flattened"] else "learning curve"
    ax.set_title(f"{title}\n{state}: {verdict(curve)}", fontsize=8, wrap=True)
    save_figure(fig, path, dpi=110)
    return path


def _plot_points(ax: Any, curve: Mapping[str, Any]) -> None:
    """Each seed's errors, and the mean of each size; errors under the floor sit on it."""
    floor = curve["floor"]
    for i in range(len(curve["seeds"])):
        rows = zip(curve["sizes"], curve["errors"], strict=True)
        points = [(n, max(row[i], floor)) for n, row in rows if row[i] is not None]
        if points:
            label = "each seed" if i == 0 else None
            ax.scatter(*zip(*points, strict=True), s=18, alpha=0.5, color="tab:blue", label=label)
    rows = zip(curve["sizes"], curve["mean_errors"], strict=True)
    means = [(n, max(m, floor)) for n, m in rows if m is not None]
    if means:
        ax.plot(*zip(*means, strict=True), "o", color="black", markersize=6, label="mean")


def _fit_end(curve: Mapping[str, Any]) -> float:
    """Where the fitted line ends: past the size the goal needs, else a few times the full size."""
    full, need = curve["full_size"], curve["examples_for_goal"]
    if need is None or need <= full:
        return EXTEND * full
    return min(1.2 * need, FARTHEST * full)
