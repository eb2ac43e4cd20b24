"""curves.png: training vs validation loss and the goal metric per epoch, target and best epoch marked."""

from __future__ import annotations

from pathlib import Path

from practicum.config.goal import Goal
from practicum.methodology.history import History
from practicum.platform.files import save_figure


def plot_curves(history: History, goal: Goal, best: int | None, path: Path, title: str) -> Path:
    """Two panels sharing the epoch axis: loss, then the goal metric with its target line."""
    # a Figure of its own, drawn by Agg into the file: no pyplot (its import, backend choice and
    # global figure list), so never a window or a display, and nothing to close afterwards
    from matplotlib.figure import Figure

    name = goal.metric.split("/", 1)[-1]
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric, ylabel in ((axes[0], "loss", "loss"), (axes[1], name, name)):
        for split, style in (("train", "-"), ("val", "--")):
            points = [
                (e, v[f"{split}/{metric}"]) for e, v in history.items() if f"{split}/{metric}" in v
            ]
            if points:
                epochs, values = zip(*points, strict=True)
                ax.plot(
                    epochs, values, style, marker="o", markersize=3, linewidth=1.8, label=f"{split}"
                )
        if best is not None:
            ax.axvline(
                best, color="grey", linestyle=":", linewidth=1.2, label=f"best epoch ({best})"
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[1].axhline(
        goal.target, color="tab:red", linewidth=1.2, label=f"target ({goal.describe()})"
    )
    axes[0].set_title("loss (lower is better)", fontsize=11)
    axes[1].set_title(f"goal metric: {goal.metric}", fontsize=11)
    for ax in axes:
        ax.legend(fontsize=9)
    fig.suptitle(title, fontsize=12)
    save_figure(fig, path, dpi=110)
    return path


def log_figure_to_loggers(loggers: list, path: Path, step: int) -> None:
    """Show curves.png in TensorBoard / W&B too; the CSV logger has it in the run directory already."""
    for logger in loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            logger.log_image(key="curves", images=[str(path)], step=step)
        elif kind == "TensorBoardLogger":
            import matplotlib.image as mpimg

            image = mpimg.imread(path)[..., :3]
            logger.experiment.add_image("curves", image, global_step=step, dataformats="HWC")
            logger.experiment.flush()
