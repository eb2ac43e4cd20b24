"""The one flow of a run: build -> fit -> evaluate the best checkpoint -> summarize.

`cli.py` has already composed and validated the config; this module does the heavy lifting.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from practicum.build import build_datamodule, build_task, build_trainer, require_file
from practicum.errors import UserError
from practicum.methodology.goal import Goal
from practicum.methodology.history import best_epoch, diverged, read_history
from practicum.methodology.summary import finite_or_none, print_metrics_table, write_json
from practicum.tasks.base import CONFIG_KEY

console = Console()


def train_run(cfg: DictConfig) -> float | None:
    """Train, evaluate the best checkpoint on every split, write summary.json; return the goal metric."""
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    goal = Goal.from_config(cfg.goal)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    trainer = build_trainer(cfg)
    summary: dict[str, Any] = {
        "task_name": cfg.task_name,
        "run_dir": str(output_dir),
        "goal": goal.as_dict(),
    }
    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        best_path = (
            trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        )
        splits = ("train", "val", "test") if cfg.get("test", True) else ("train", "val")
        metrics = evaluate_splits(cfg, task, datamodule, splits, best_path or None)
    except Exception as exc:
        if isinstance(exc, UserError):
            raise
        summary.update(status="failed", error=traceback.format_exception_only(exc)[-1].strip())
        summary["wall_time_s"] = round(time.perf_counter() - started, 3)
        write_json(output_dir / "summary.json", summary)
        raise

    history = read_history(output_dir / "metrics.csv")
    value = finite_or_none(metrics.get(goal.metric))
    summary.update(
        goal_met=goal.met(value),
        verdict=None,
        metrics=metrics,
        best_epoch=best_epoch(history, goal),
        epochs_trained=len(history),
        best_checkpoint=best_path or None,
        status="diverged" if diverged(history) else "completed",
        wall_time_s=round(time.perf_counter() - started, 3),
    )
    write_json(output_dir / "summary.json", summary)
    print_metrics_table(
        metrics, goal, title=f"Best checkpoint (epoch {summary['best_epoch']})", console=console
    )
    verdict = "[green]met[/green]" if summary["goal_met"] else "[red]not met[/red]"
    shown = "n/a" if value is None else f"{value:.4f}"
    console.print(f"Goal {goal.describe()}: {verdict} ({shown})")
    console.print(f"Run directory: {output_dir}", soft_wrap=True)
    return value


def evaluate_splits(
    cfg: DictConfig,
    task: pl.LightningModule,
    datamodule: Any,
    splits: tuple[str, ...],
    ckpt_path: str | None,
) -> dict[str, float]:
    """Metrics of one checkpoint on each split, in eval mode, with a Trainer that logs nothing."""
    trainer = build_trainer(cfg, quiet=True)
    metrics: dict[str, float] = {}
    for i, split in enumerate(splits):
        task.eval_split = split
        # load the checkpoint once; later calls keep its weights
        results = trainer.test(
            task,
            dataloaders=datamodule.loader(split),
            ckpt_path=ckpt_path if i == 0 else None,
            verbose=False,
        )
        metrics.update({key: float(value) for key, value in results[0].items()})
    task.eval_split = "test"
    return metrics


def load_run_config(ckpt_path: str) -> DictConfig:
    """The resolved config a checkpoint was trained with: enough to rebuild its data and model."""
    require_file(
        ckpt_path,
        "ckpt_path",
        "pass the path of a .ckpt file written by train.py (its checkpoints/ folder)",
    )
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise UserError(
            f"ckpt_path={ckpt_path!r} is not a readable checkpoint ({type(exc).__name__})"
        ) from exc
    if CONFIG_KEY not in checkpoint:
        raise UserError(
            f"ckpt_path={ckpt_path!r} has no practicum config: it was not written by train.py"
        )
    return OmegaConf.create(checkpoint[CONFIG_KEY])


def evaluate_run(cfg: DictConfig) -> float | None:
    """Evaluate a checkpoint on one split with the same build code as training; write eval.json."""
    run_cfg = load_run_config(str(cfg.ckpt_path))
    if cfg.split not in ("train", "val", "test"):
        raise UserError(f"split={cfg.split!r} is invalid: use train, val or test")
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    run_cfg.trainer = cfg.trainer  # where to run comes from this command, not from the checkpoint
    pl.seed_everything(run_cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(run_cfg)
    task = build_task(run_cfg, with_optimizer=False)
    metrics = evaluate_splits(run_cfg, task, datamodule, (cfg.split,), str(cfg.ckpt_path))
    goal = Goal.from_config(run_cfg.goal)
    write_json(
        output_dir / "eval.json",
        {"ckpt_path": str(cfg.ckpt_path), "split": cfg.split, "metrics": metrics},
    )
    print_metrics_table(
        metrics,
        goal,
        title=f"{Path(str(cfg.ckpt_path)).name} on the {cfg.split} split",
        console=console,
    )
    console.print(
        f"Checkpoint: {cfg.ckpt_path}\nResults: {output_dir / 'eval.json'}", soft_wrap=True
    )
    return metrics.get(goal.at(cfg.split))
