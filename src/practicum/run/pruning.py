"""Pruning a search's trial: after every epoch the trial reports the goal metric on val to its
Optuna study and asks the pruner (`search.pruner`) whether to go on. A pruned trial stops at the
end of that epoch, evaluates nothing more (no test split, no baseline, no diagnosis) and ends as
`pruned`: its run directory keeps its checkpoints and metrics.csv, and its summary.json says how
many epochs it trained and the value the pruner judged.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from omegaconf import DictConfig
from rich.console import Console

from practicum.config.goal import Goal
from practicum.methodology.history import best_epoch, read_history
from practicum.methodology.run_summary import RunSummary, finite_or_none
from practicum.run.study_trial import open_trial


class TrialPruning(pl.Callback):
    """Report the monitored metric to an Optuna trial after each epoch (step = epochs trained);
    stop training at the end of the epoch the pruner prunes."""

    def __init__(self, trial: Any, monitor: str) -> None:
        self.trial = trial
        self.monitor = monitor
        self.pruned_at: int | None = None  # epochs trained when the pruner stopped the trial

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.pruned_at is not None:
            return
        epochs = trainer.current_epoch + 1
        prune = False
        if trainer.is_global_zero:
            value = trainer.callback_metrics.get(self.monitor)
            # a NaN is no evidence either way: divergence has its own status
            if value is not None and math.isfinite(float(value)):
                self.trial.report(float(value), epochs)
                prune = bool(self.trial.should_prune())
        # under DDP every rank stops at the same epoch: rank zero decides
        if trainer.strategy.broadcast(prune):
            self.pruned_at = epochs
            trainer.should_stop = True


def trial_pruning(cfg: DictConfig) -> list[TrialPruning]:
    """The pruning callback of a search's trial whose sweeper prunes; none otherwise."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    hydra = HydraConfig.get()
    sweeper = hydra.get("sweeper") or {}
    if getattr(hydra.mode, "name", "") != "MULTIRUN" or str(sweeper.get("pruner")) in PASSIVE:
        return []
    trial = open_trial(sweeper, hydra.sweep.dir, int(hydra.job.num), int(cfg.trainer.max_epochs))
    return [TrialPruning(trial, Goal.from_config(cfg.goal).metric)]


PASSIVE = ("none", "None", "null")


def pruned_at(trainer: pl.Trainer) -> int | None:
    """Epochs trained when the pruner stopped this trainer's trial; None when it did not."""
    found = [c.pruned_at for c in trainer.callbacks if isinstance(c, TrialPruning)]
    return found[0] if found else None


def report_pruned(cfg: DictConfig, trainer: pl.Trainer, started: float, console: Console) -> float:
    """summary.json of a pruned trial, and one line; return the value the pruner judged."""
    output_dir = Path(cfg.paths.output_dir)
    goal = Goal.from_config(cfg.goal)
    epochs = pruned_at(trainer)
    seen = {
        name: float(value)
        for name, value in trainer.callback_metrics.items()
        if name.startswith(("train/", "val/")) and value.numel() == 1
    }
    value = finite_or_none(seen.get(goal.metric))
    checkpoint = trainer.checkpoint_callback
    RunSummary(
        status="pruned",
        run_dir=str(output_dir),
        goal=goal.as_dict(),
        task_name=cfg.task_name,
        objective=value,
        metrics=seen,
        best_epoch=best_epoch(read_history(output_dir / "metrics.csv"), goal),
        epochs_trained=epochs,
        best_checkpoint=(checkpoint.best_model_path or None) if checkpoint else None,
        wall_time_s=round(time.perf_counter() - started, 3),
    ).write()
    shown = "—" if value is None else f"{value:.4g}"
    console.print(f"Pruned after epoch {epochs}: {goal.metric} {shown}", soft_wrap=True)
    return math.nan if value is None else value
