"""The one flow of a run: build -> [checks | lr range test] -> fit -> evaluate -> diagnose -> report.

`cli.py` has already composed and validated the config; this module does the heavy lifting.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, open_dict
from rich.console import Console

from practicum import wandb_runs
from practicum.build import build_datamodule, build_task, build_trainer
from practicum.checkpointing import checkpoint_progress, resolve_ckpt_path
from practicum.config_tree import show_config
from practicum.errors import UserError
from practicum.methodology.curves import log_figure_to_loggers, plot_curves
from practicum.methodology.diagnosis import diagnose
from practicum.methodology.goal import Goal
from practicum.methodology.history import best_epoch, read_history
from practicum.methodology.report import print_panel, send_to_loggers, write_report
from practicum.methodology.summary import finite_or_none, print_metrics_table, write_json

console = Console()


def train_run(cfg: DictConfig) -> float | None:
    """Train, evaluate the best checkpoint on every split, diagnose, report; return the goal metric."""
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    if cfg.get("study"):
        from practicum.search.study import run_study

        return run_study(cfg)
    if int((cfg.get("search") or {}).get("repeats", 1)) > 1:
        from practicum.search.repeats import repeat_over_seeds

        return repeat_over_seeds(cfg)
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    show_config(cfg, output_dir, console)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)

    if (cfg.get("checks") or {}).get("enabled"):
        return run_sanity_checks(cfg, datamodule, output_dir)
    if (cfg.get("tune") or {}).get("mode") == "lr":
        suggestion = apply_lr_range_test(cfg, datamodule, output_dir)
        if not cfg.tune.get("apply", True):
            return suggestion
        pl.seed_everything(cfg.seed, workers=True, verbose=False)

    task = build_task(cfg)
    ckpt_path = resolve_ckpt_path(cfg)
    resuming_here = (
        ckpt_path is not None and Path(ckpt_path).resolve().parent.parent == output_dir.resolve()
    )
    resume_step = checkpoint_progress(ckpt_path)[1] if resuming_here else None
    trainer = build_trainer(cfg, resume_step=resume_step)
    try:
        metrics, baseline = fit_and_evaluate(cfg, task, trainer, datamodule, started, ckpt_path)
        if trainer.is_global_zero:
            value = report_run(cfg, trainer, datamodule, metrics, baseline, started)
        else:
            # under DDP every rank trains and evaluates; only rank zero writes the run's files
            value = finite_or_none(metrics.get(cfg.goal.metric))
    except BaseException:
        wandb_runs.finish(failed=True)
        raise
    # the next trial of a sweep in this process must get its own W&B run
    wandb_runs.finish()
    return value


def fit_and_evaluate(
    cfg: DictConfig,
    task: Any,
    trainer: pl.Trainer,
    datamodule: Any,
    started: float,
    ckpt_path: str | None = None,
) -> tuple[dict[str, float], dict[str, float] | None]:
    """Fit, then measure the best checkpoint on every split (and the linear baseline beside it).

    A crash leaves a summary.json marked failed, so the run directory never looks like a success.
    """
    output_dir = Path(cfg.paths.output_dir)
    try:
        try:
            trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
        except RuntimeError as exc:
            if "loading state_dict" not in str(exc):
                raise
            raise UserError(
                f"ckpt_path={ckpt_path} does not fit model={cfg.model.get('name')} "
                f"data={cfg.data.get('name')}: it was trained with another model or data config; "
                "pass a checkpoint of this configuration (or the overrides it was trained with)"
            ) from exc
        splits = ("train", "val", "test") if cfg.get("test", True) else ("train", "val")
        metrics = evaluate_splits(cfg, task, datamodule, splits, best_checkpoint(trainer))
        return metrics, linear_baseline(cfg, datamodule)
    except (KeyboardInterrupt, SystemExit) as exc:
        # Ctrl-C: Lightning saved a checkpoint (save_on_exception) and exits; say how to go on
        if trainer.interrupted:
            resume = f"python train.py ckpt_path=last hydra.run.dir={output_dir}"
            _write_unfinished(cfg, output_dir, started, "interrupted", exc, resume=resume)
            console.print(f"Interrupted; checkpoint saved. Resume with: {resume}", soft_wrap=True)
        raise
    except Exception as exc:
        if not isinstance(exc, UserError):
            _write_unfinished(cfg, output_dir, started, "failed", exc)
        raise


def _write_unfinished(
    cfg: DictConfig, output_dir: Path, started: float, status: str, exc: BaseException, **extra: str
) -> None:
    """A summary.json that says the run did not finish, so the directory never looks like a success."""
    summary = {
        "task_name": cfg.task_name,
        "run_dir": str(output_dir),
        "goal": Goal.from_config(cfg.goal).as_dict(),
        "status": status,
        "error": traceback.format_exception_only(exc)[-1].strip() or type(exc).__name__,
        "wall_time_s": round(time.perf_counter() - started, 3),
        **extra,
    }
    write_json(output_dir / "summary.json", summary)


def best_checkpoint(trainer: pl.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    return (callback.best_model_path or None) if callback else None


def report_run(
    cfg: DictConfig,
    trainer: pl.Trainer,
    datamodule: Any,
    metrics: dict[str, float],
    baseline: dict[str, float] | None,
    started: float,
) -> float:
    """Diagnose the run; write summary.json, report.md and curves.png; print the table and panel."""
    output_dir = Path(cfg.paths.output_dir)
    goal = Goal.from_config(cfg.goal)
    history = read_history(output_dir / "metrics.csv")
    best = best_epoch(history, goal)
    settings = {"lr": float(cfg.optimizer.lr), "max_epochs": int(cfg.trainer.max_epochs)}
    diagnosis = diagnose(metrics, goal, history, best, settings, baseline, datamodule.split_sizes())
    value = finite_or_none(metrics.get(goal.metric))
    if diagnosis.verdict == "diverged":
        value = None  # a sweeper must not rank a diverged trial by its leftover metrics
    summary = {
        "task_name": cfg.task_name,
        "run_dir": str(output_dir),
        "goal": goal.as_dict(),
        "objective": value,
        "goal_met": goal.met(value),
        "verdict": diagnosis.verdict,
        "diagnosis": diagnosis.as_dict(),
        "metrics": metrics,
        "baseline": baseline,
        "best_epoch": best,
        "epochs_trained": len(history),
        "best_checkpoint": best_checkpoint(trainer),
        "status": "diverged" if diagnosis.verdict == "diverged" else "completed",
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    title = run_title(cfg, output_dir)
    curves = plot_curves(history, goal, best, output_dir / "curves.png", title)
    log_figure_to_loggers(trainer.loggers, curves, step=trainer.global_step)
    save_pictures = getattr(trainer.lightning_module, "save_pictures", None)
    if save_pictures is not None:
        # the task's own pictures of the best checkpoint, e.g. predictions on validation images
        save_pictures(datamodule, output_dir, title)
    report = write_report(output_dir / "report.md", summary, diagnosis, goal, title)
    send_to_loggers(trainer.loggers, summary, report, step=trainer.global_step)
    write_json(output_dir / "summary.json", summary)

    print_metrics_table(metrics, goal, title=f"Best checkpoint (epoch {best})", console=console)
    if diagnosis.verdict == "diverged":
        console.print(
            "[red]Training diverged[/red]: the loss became non-finite or blew up; see report.md."
        )
    print_panel(summary, diagnosis, goal, console)
    console.print(f"Run directory: {output_dir}", soft_wrap=True)
    return float("nan") if value is None else value


def run_title(cfg: DictConfig, output_dir: Path) -> str:
    """What plots and reports are titled with: the run's parts and its name (a sweep's trial number)."""
    trial = wandb_runs.sweep_trial()
    name = f"{trial[0]} trial {trial[1]}" if trial else output_dir.name
    return f"{cfg.task_name}: model={cfg.model.get('name')} data={cfg.data.get('name')} ({name})"


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


def linear_baseline(cfg: DictConfig, datamodule: Any) -> dict[str, float] | None:
    """Metrics of a linear model on the same split, unless this run is that model or it is switched off."""
    settings = cfg.get("diagnosis") or {}
    model = settings.get("baseline_model")
    if not model or cfg.model.get("name") == model or cfg.model.get("problem") != "classification":
        return None
    from practicum.methodology.baseline import train_linear_baseline

    return train_linear_baseline(cfg, datamodule, model, int(settings.get("baseline_epochs", 20)))


def run_sanity_checks(cfg: DictConfig, datamodule: Any, output_dir: Path) -> float | None:
    """`debug=checks`: run the checks on a fresh model, print the table, write checks.json."""
    from practicum.methodology.checks import (
        print_checks,
        run_checks,
        settings_from_config,
        write_checks,
    )

    if not isinstance(getattr(datamodule, "splits", {}).get("train"), tuple):
        raise UserError(
            "debug=checks needs in-memory data (digits, wine, breast_cancer, csv, npz); "
            f"data={cfg.data.get('name')} is read from files"
        )
    results = run_checks(build_task(cfg), datamodule, settings_from_config(cfg.checks))
    print_checks(results, console)
    path = write_checks(results, output_dir)
    failed = [r.name for r in results if not r.passed]
    verdict = f"[red]failed: {', '.join(failed)}[/red]" if failed else "[green]all passed[/green]"
    console.print(f"Sanity checks {verdict}.  Written to {path}", soft_wrap=True)
    return float(len(failed))


def apply_lr_range_test(cfg: DictConfig, datamodule: Any, output_dir: Path) -> float:
    """`tune=lr`: run the range test, save its plot and numbers, and (by default) train with its suggestion."""
    from practicum.methodology.lr_range import lr_range_test, settings_from_config

    settings = settings_from_config(cfg.tune)
    result = lr_range_test(
        build_task(cfg), datamodule, seed=int(cfg.seed), **settings.test_kwargs()
    )
    result.save_plot(output_dir / "lr_range.png", run_title(cfg, output_dir))
    write_json(output_dir / "lr_range.json", result.as_dict())
    console.print(
        f"LR range test: suggested lr {result.suggestion:.3g} (the loss was lowest at {result.min_loss_lr:.3g}); "
        f"plot: {output_dir / 'lr_range.png'}",
        soft_wrap=True,
    )
    if settings.apply:
        with open_dict(cfg):
            cfg.optimizer.lr = float(result.suggestion)
        console.print(f"Training with optimizer.lr={result.suggestion:.3g}")
    return float(result.suggestion)
