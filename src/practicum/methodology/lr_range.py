"""Learning-rate range test (Smith 2015, "LR finder"): sweep the lr upward and read the loss curve.

A short run trains a copy of the net while the learning rate grows exponentially, one mini-batch
per step, from `min_lr` to `max_lr`. The smoothed training loss first barely moves (lr too
small), then falls (lr useful), then blows up (lr too large). The suggestion is read from that
curve in log(lr); see `suggest_lr` for the rule and why it is not Lightning's `lr_find` rule.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from practicum.config import TuneConfig, settings
from practicum.errors import UserError
from practicum.methodology.code_checks import to_device
from practicum.platform.files import save_figure

DIVERGENCE_FACTOR = 4.0  # stop once the smoothed loss exceeds this many times the best seen


@dataclass
class LRRangeResult:
    """The swept learning rates, the smoothed loss at each, and the learning rate to train with."""

    lrs: list[float]
    losses: list[float]
    suggestion: float
    min_loss_lr: float
    steepest_lr: float
    stopped_early: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save_plot(self, path: str | Path, title: str = "") -> Path:
        """Write the loss-vs-lr curve with the suggestion marked to a PNG."""
        import matplotlib

        matplotlib.use("Agg")  # files only: never open a window or need a display
        import matplotlib.pyplot as plt

        path = Path(path)
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
        try:
            ax.plot(self.lrs, self.losses, color="tab:blue", label="smoothed training loss")
            ax.set_xscale("log")
            low, best = self.min_loss_lr, self.suggestion
            ax.axvline(low, color="gray", linestyle=":", label=f"lowest loss at {low:.2g}")
            ax.axvline(best, color="tab:red", linestyle="--", label=f"suggested lr {best:.2g}")
            at_best = np.interp(np.log10(best), np.log10(self.lrs), self.losses)
            red = "tab:red"
            ax.annotate(
                f"suggested lr\n{best:.2g}",
                (best, at_best),
                xytext=(14, 28),
                textcoords="offset points",
                color=red,
                arrowprops={"arrowstyle": "->", "color": red},
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": red},
            )
            ax.set_xlabel("learning rate (log scale)")
            ax.set_ylabel("training loss (smoothed)")
            stop = "stopped early: loss diverged" if self.stopped_early else "full sweep"
            heading = f"Learning-rate range test ({len(self.lrs)} steps, {stop})"
            ax.set_title(f"{title}\n{heading}" if title else heading, fontsize=11)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(loc="best")
            fig.tight_layout()
            path.parent.mkdir(parents=True, exist_ok=True)
            save_figure(fig, path)
        finally:
            plt.close(fig)
        return path


def lr_range_test(
    task: Any,
    datamodule: Any,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    steps: int = 100,
    smoothing: float = 0.9,
    seed: int = 0,
) -> LRRangeResult:
    """Train a copy of `task.net` for up to `steps` batches with an exponentially growing lr.

    Uses the task's own loss and optimizer class (with its weight-decay groups and other settings);
    only the learning rate is overridden each step. The task itself is left untouched.
    """
    # the same checks as the tune config's: one line for a bad bound, count or smoothing
    settings(
        dict(min_lr=min_lr, max_lr=max_lr, steps=steps, smoothing=smoothing), TuneConfig, "tune"
    )
    if task.optimizer_factory is None:
        raise UserError("the LR range test needs a task built with an optimizer (build_task(cfg))")
    net = copy.deepcopy(task.net).train()
    optimizer = task.optimizer_factory(_groups_for_copy(task, net))
    device = next(net.parameters()).device
    schedule = np.geomspace(min_lr, max_lr, steps)

    lrs: list[float] = []
    losses: list[float] = []
    average, best, stopped_early = 0.0, math.inf, False
    # a private RNG state: the test's shuffling and dropout neither depend on nor disturb the run's
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        batches = _cycle(datamodule, device)
        for step, lr in enumerate(schedule):
            for group in optimizer.param_groups:
                group["lr"] = float(lr)
            x, y = next(batches)
            loss = task.criterion(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            value = float(loss.detach())
            if not math.isfinite(value):
                stopped_early = True
                break
            average = smoothing * average + (1 - smoothing) * value
            smoothed = average / (1 - smoothing ** (step + 1))  # bias correction of the zero start
            lrs.append(float(lr))
            losses.append(smoothed)
            best = min(best, smoothed)
            if smoothed > DIVERGENCE_FACTOR * best:
                stopped_early = True
                break
    if not lrs:
        raise UserError(
            f"the LR range test diverged at its first step (lr={min_lr:g}): lower tune.min_lr"
        )
    suggestion, min_loss_lr, steepest_lr = suggest_lr(lrs, losses)
    return LRRangeResult(lrs, losses, suggestion, min_loss_lr, steepest_lr, stopped_early)


def suggest_lr(lrs: list[float], losses: list[float]) -> tuple[float, float, float]:
    """`(suggestion, min_loss_lr, steepest_lr)` from a smoothed loss curve.

    The rule, everything in log10(lr):
    - `min_loss_lr`: the lr where the smoothed loss is lowest. Past it the lr is already too large
      (the loss rises), and because the loss is smoothed over the last ~10 steps the minimum lags
      the point where things go wrong; one decade below it is safely in the useful region.
    - `steepest_lr`: the lr where the loss falls fastest per decade of lr, searched only below the
      minimum, where the loss is still coming down.
    - suggestion: the smaller (more conservative) of `min_loss_lr / 10` and `steepest_lr`.

    Why not Lightning's `lr_find` rule: it takes the steepest slope with respect to the lr itself,
    not log(lr). Dividing by the tiny lr steps at the bottom of the sweep amplifies noise there, so
    it tends to pick the smallest learning rates (1.7e-6 on digits, which trained to 13% accuracy).
    """
    log_lrs = np.log10(np.asarray(lrs))
    values = np.asarray(losses)
    lowest = int(np.argmin(values))
    min_loss_lr = float(lrs[lowest])
    steepest_lr = min_loss_lr / 10
    if lowest >= 2:
        slopes = np.gradient(values[: lowest + 1], log_lrs[: lowest + 1])
        steepest_lr = float(lrs[int(np.argmin(slopes))])
    return min(min_loss_lr / 10, steepest_lr), min_loss_lr, steepest_lr


def _groups_for_copy(task: Any, net: nn.Module) -> list[dict[str, Any]]:
    """The task's parameter groups (weight-decay split and all), pointing at the copy's parameters."""
    to_copy = {
        id(original): clone
        for original, clone in zip(task.net.parameters(), net.parameters(), strict=True)
    }
    groups = []
    for group in task.parameter_groups():
        params = [to_copy[id(p)] for p in group["params"] if id(p) in to_copy]
        if params:
            groups.append({**group, "params": params})
    return groups


def _cycle(datamodule: Any, device: torch.device) -> Iterator[tuple[Any, torch.Tensor]]:
    """Shuffled training batches, pass after pass, for as many steps as the sweep needs."""
    loader = datamodule.loader("train", shuffle=True)
    if len(loader) == 0:
        raise UserError("the LR range test needs training data, but the train split is empty")
    while True:
        for x, y in loader:
            # x may be a tuple: a sequence batch is (padded, lengths)
            yield to_device(x, device), y.to(device)
