"""Measuring a checkpoint: on each split after training, and `python eval.py ckpt_path=...`, which
rebuilds a checkpoint's data and model from the config it holds and measures it on one split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console

from practicum.config.goal import Goal
from practicum.config.validate import validate
from practicum.errors import UserError
from practicum.methodology.outcome import print_metrics_table
from practicum.methodology.run_summary import RunSummary
from practicum.platform.files import write_json
from practicum.run.build import build_datamodule, build_task, build_trainer, require_file
from practicum.tasks.base import CONFIG_KEY


def evaluate_splits(
    cfg: DictConfig,
    task: pl.LightningModule,
    datamodule: Any,
    splits: tuple[str, ...],
    ckpt_path: str | None,
) -> dict[str, float]:
    """Metrics of one checkpoint on each split, in eval mode, with a Trainer that logs nothing.

    The standard error of each metric the task could measure (its `split_errors` after each
    split) is left in `task.standard_errors`, keyed like the metrics; its per-example outcomes
    (`split_outcomes`) in `task.example_outcomes`, by split."""
    trainer = build_trainer(cfg, quiet=True)
    metrics: dict[str, float] = {}
    errors: dict[str, float] = {}
    outcomes: dict[str, dict[str, Any]] = {}
    for i, split in enumerate(splits):
        task.eval_split = split
        task.split_errors, task.split_outcomes = {}, {}
        # load the checkpoint once; later calls keep its weights
        try:
            results = trainer.test(
                task,
                dataloaders=datamodule.loader(split),
                ckpt_path=ckpt_path if i == 0 else None,
                verbose=False,
            )
        except RuntimeError as exc:
            if i > 0 or "state_dict" not in str(exc):
                raise
            first = str(exc).strip().splitlines()
            raise UserError(
                f"ckpt_path={ckpt_path}: its weights do not fit the model its config builds "
                f"({first[1].strip() if len(first) > 1 else first[0]}): pass a checkpoint "
                "written by train.py for this config"
            ) from exc
        measured = {key: float(value) for key, value in results[0].items()}
        metrics.update(measured)
        errors.update({k: v for k, v in task.split_errors.items() if k in measured})
        if getattr(task, "split_outcomes", None):
            outcomes[split] = task.split_outcomes
    task.eval_split = "test"
    task.standard_errors = errors
    task.example_outcomes = outcomes
    return metrics


def best_checkpoint(trainer: pl.Trainer) -> str | None:
    """The best checkpoint on the goal metric: the checkpoint callback that monitors one (the
    one writing last.ckpt monitors nothing), whatever the order of the callbacks."""
    monitored = [c for c in trainer.checkpoint_callbacks if getattr(c, "monitor", None)]
    callback = monitored[0] if monitored else trainer.checkpoint_callback
    return (callback.best_model_path or None) if callback else None


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
    run_cfg = OmegaConf.create(checkpoint[CONFIG_KEY])
    # the stored config is checked exactly as a command line's: it cannot extend trust
    with open_dict(run_cfg):
        run_cfg.ckpt_path = None  # the checkpoint it resumed from, if any, is not needed again
    try:
        validate(run_cfg)
    except UserError as exc:
        raise UserError(f"the config stored in ckpt_path={ckpt_path} is refused: {exc}") from exc
    return run_cfg


def evaluate_run(cfg: DictConfig) -> float | None:
    """Evaluate a checkpoint on one split with the same build code as training; write eval.json."""
    console = Console()
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
    console.print(training_comparison(str(cfg.ckpt_path), cfg.split, goal, metrics))
    console.print(
        f"Checkpoint: {cfg.ckpt_path}\nResults: {output_dir / 'eval.json'}", soft_wrap=True
    )
    return metrics.get(goal.at(cfg.split))


def training_comparison(ckpt_path: str, split: str, goal: Goal, metrics: dict[str, float]) -> str:
    """What the training run measured for this checkpoint on the same split, read from its
    summary.json (checkpoints/<file>.ckpt sits two levels below the run directory)."""
    summary = RunSummary.read(Path(ckpt_path).resolve().parents[1])
    name = goal.at(split)
    if summary is None or not summary.finished or name not in summary.metrics:
        return "The training run left no finished summary.json beside this checkpoint."
    is_best = (
        summary.best_checkpoint
        and Path(summary.best_checkpoint).resolve() == Path(ckpt_path).resolve()
    )
    which = "this checkpoint" if is_best else f"its best checkpoint (epoch {summary.best_epoch})"
    now = metrics.get(name)
    now_text = "—" if now is None else f"{now:.4f}"
    return (
        f"The training run ({summary.status}) measured {name} {summary.metrics[name]:.4f} for "
        f"{which}; now {now_text}."
    )
