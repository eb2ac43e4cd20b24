"""`tune=data_size`: do you have enough training data? One config trained on nested shares of its
training split, a few seeds each; the learning curve fitted and plotted (methodology/data_curve.py).

Each training is a normal run in `examples_<n>/seed_<s>/` of this run's directory, with
`data.train_subset=<n>` and `seed=<s>`; the data split stays fixed by `data.split_seed`, and the
subsets are nested (data/splits.py `subset`), so a larger size only adds examples. With
`data.train_subset=N` given, the curve's full size is N: the fit extrapolates from it.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, open_dict
from rich.console import Console

from practicum.config import TuneConfig, part_name, settings
from practicum.config.goal import Goal
from practicum.config.validate import declared_problem
from practicum.errors import UserError
from practicum.methodology.data_curve import (
    curve_sizes,
    goal_error,
    learning_curve,
    plot_curve,
    report_lines,
    verdict,
)
from practicum.methodology.run_summary import finite_or_none
from practicum.platform.files import write_json, write_text

if TYPE_CHECKING:
    from practicum.run.one_run import RunOne

SUPERVISED = ("classification", "sequence_classification")


def data_size_curve(cfg: DictConfig, run_one: RunOne) -> float | None:
    """Train every size and seed, fit and plot the curve, say whether more data reaches the goal;
    return the goal metric's mean at the full size."""
    console = Console()
    output_dir = Path(cfg.paths.output_dir)
    tune = settings(cfg.tune, TuneConfig, "tune")
    goal = Goal.from_config(cfg.goal)
    check_supported(cfg, goal)
    split = training_split(cfg)
    sizes = curve_sizes(tune.fractions, split["train"], split["classes"])
    seeds = list(range(int(cfg.seed), int(cfg.seed) + tune.seeds))
    console.print(
        f"Learning curve: {len(sizes)} sizes ({', '.join(map(str, sizes))} of {split['train']} "
        f"training examples) x {len(seeds)} seeds, {goal.metric} on {split['val']} validation "
        "examples",
        soft_wrap=True,
    )
    values = train_all(cfg, run_one, sizes, seeds, tune.equal_steps)
    errors = [[goal_error(goal, v) for v in row] for row in values]
    curve = learning_curve(sizes, errors, seeds, goal, split["val"], available=split["train"])
    write_curve(cfg, curve, output_dir)
    console.print(verdict(curve), soft_wrap=True)
    console.print(f"Learning curve: {output_dir / 'data_curve.png'}", soft_wrap=True)
    full = [v for v in values[-1] if v is not None]
    return statistics.fmean(full) if full else float("nan")


def check_supported(cfg: DictConfig, goal: Goal) -> None:
    """A model and data the curve can be drawn for: supervised, a cuttable training split, a
    validation goal metric; anything else is one line before any training."""
    parts = f"model={part_name(cfg, 'model')} data={part_name(cfg, 'data')}"
    if declared_problem(cfg.get("model")) not in SUPERVISED:
        raise UserError(
            f"tune=data_size draws the learning curve of a supervised classifier; {parts} is not "
            "one: use a classification model (e.g. model=mlp)"
        )
    if "train_subset" not in (cfg.get("data") or {}):
        raise UserError(
            f"tune=data_size needs data that can keep a part of its training split "
            f"(data.train_subset); data={part_name(cfg, 'data')} cannot"
        )
    if cfg.get("ckpt_path"):
        raise UserError(
            f"ckpt_path={cfg.ckpt_path}: tune=data_size trains every size from scratch; "
            "drop ckpt_path"
        )
    if not goal.metric.startswith("val/"):
        raise UserError(
            f"goal.metric={goal.metric}: tune=data_size fits the validation error; use a val/ "
            "metric (e.g. goal.metric=val/acc)"
        )


def training_split(cfg: DictConfig) -> dict[str, int]:
    """Training and validation examples, and classes, of the data as configured (with
    `data.train_subset` given, the training split is that subset)."""
    from practicum.run.build import build_datamodule

    datamodule = build_datamodule(cfg.copy())
    counts = datamodule.split_sizes()
    return {
        "train": counts["train"],
        "val": counts["val"],
        "classes": int(getattr(datamodule, "num_classes", 0) or 0),
    }


def train_all(
    cfg: DictConfig, run_one: RunOne, sizes: list[int], seeds: list[int], equal_steps: bool
) -> list[list[float | None]]:
    """The goal metric of a normal run per size and seed (None: the run failed or diverged)."""
    console = Console()
    width = len(str(sizes[-1]))  # zero-padded folder names list in size order
    values = []
    for size in sizes:
        row = []
        for seed in seeds:
            run = cfg.copy()
            with open_dict(run):
                run.seed = seed
                run.data.train_subset = size
                if equal_steps:
                    same_steps(run, round(sizes[-1] / size))
                folder = Path(cfg.paths.output_dir) / f"examples_{size:0{width}d}" / f"seed_{seed}"
                run.paths.output_dir = str(folder)
            row.append(finite_or_none(run_one(run, quiet=True)))
            shown = "failed" if row[-1] is None else f"{row[-1]:.4f}"
            console.print(f"  {size} examples, seed {seed}: {cfg.goal.metric} {shown}")
        values.append(row)
    return values


def same_steps(run: DictConfig, factor: int) -> None:
    """`factor` times the epochs, validated every `factor` epochs: a subset `factor` times smaller
    gets the full size's updates, schedule and early-stopping patience (counted in validations).
    Why: at equal epochs a small subset takes few steps and stops short of what its data allows,
    which steepens the curve and makes its forecast optimistic."""
    if factor <= 1:
        return
    for key in ("max_epochs", "check_val_every_n_epoch"):
        if isinstance(run.trainer.get(key), int) and run.trainer[key] > 0:
            run.trainer[key] = run.trainer[key] * factor
    # a checkpoint that watches a validation metric looks at the epochs that validate only
    for callback in (run.get("callbacks") or {}).values():
        if isinstance(callback, DictConfig) and callback.get("monitor") and _saves(callback):
            callback.every_n_epochs = factor * int(callback.get("every_n_epochs") or 1)


def _saves(callback: DictConfig) -> bool:
    return str(callback.get("_target_", "")).endswith("ModelCheckpoint")


def write_curve(cfg: DictConfig, curve: dict[str, Any], output_dir: Path) -> None:
    """data_curve.json, data_curve.png and report.md in the mode's run directory."""
    title = f"{cfg.task_name}: model={part_name(cfg, 'model')} data={part_name(cfg, 'data')}"
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(output_dir / "data_curve.json", curve)
    plot_curve(curve, output_dir / "data_curve.png", f"{title} ({output_dir.name})")
    write_text(output_dir / "report.md", "\n".join(report_lines(curve, f"Learning curve: {title}")))
