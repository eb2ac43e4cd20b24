"""The flow of `python eval.py ckpt_path=...`: rebuild a checkpoint's data and model from the
config it holds, and measure it on one split with the same code that evaluates a training run."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf

from practicum.build import build_datamodule, build_task, require_file
from practicum.errors import UserError
from practicum.methodology.goal import Goal
from practicum.methodology.summary import print_metrics_table, write_json
from practicum.run import console, evaluate_splits
from practicum.tasks.base import CONFIG_KEY


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
