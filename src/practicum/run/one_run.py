"""One run, the leaf of every mode: build -> fit -> evaluate -> diagnose -> report.

`cli.py` has composed and validated the config and picked the mode; a mode that runs several
configs (repeats, a study, the autopilot) calls `train_run` once per config. Nothing here knows
about modes: this module imports none of them.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
import traceback
from pathlib import Path
from typing import Any, Protocol

import lightning.pytorch as pl
from omegaconf import DictConfig
from rich.console import Console

from practicum.config import part_name
from practicum.config.config_tree import show_config
from practicum.config.goal import Goal
from practicum.config.knobs import run_changes
from practicum.config.validate import declared_problem
from practicum.errors import Terminated, UserError
from practicum.methodology.callbacks import CodeFactsRecorder, GoalEarlyStopping, StepLosses
from practicum.methodology.cases import RunFacts
from practicum.methodology.commands import run_overrides
from practicum.methodology.curves import log_figure_to_loggers, plot_curves
from practicum.methodology.data_audit import UNTRUSTED
from practicum.methodology.diagnosis import diagnose, standard_error
from practicum.methodology.history import best_epoch, read_history
from practicum.methodology.outcome import print_outcome
from practicum.methodology.paired import write_outcomes
from practicum.methodology.report import send_to_loggers, write_report
from practicum.methodology.run_summary import RunSummary, finite_or_none
from practicum.platform.files import no_space, remove_stale_temps
from practicum.platform.ranks import is_rank_zero
from practicum.run import wandb_runs
from practicum.run.audit import audit_run
from practicum.run.build import build_datamodule, build_task, build_trainer
from practicum.run.checkpoints import (
    checkpoint_progress,
    epochs_done,
    mid_epoch,
    progress_text,
    resolve_ckpt_path,
)
from practicum.run.evaluate import best_checkpoint, evaluate_splits
from practicum.run.pruning import pruned_at, report_pruned
from practicum.run.resume import resume_command
from practicum.run.step_checkpoints import StepCheckpoint


class RunOne(Protocol):
    """What a mode that runs several configs is given: `train_run`, or anything shaped like it."""

    def __call__(self, cfg: DictConfig, quiet: bool = False) -> float | None: ...


def train_run(cfg: DictConfig, quiet: bool = False) -> float | None:
    """Train, evaluate the best checkpoint on every split, diagnose, report; return the goal metric.

    `quiet` keeps the terminal to errors (a mode that runs many configs prints its own lines);
    the run directory gets every file either way. Under DDP only rank zero prints."""
    console = Console(quiet=quiet or not is_rank_zero())
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    ckpt_path = resolve_ckpt_path(cfg)
    resuming_here = (
        ckpt_path is not None and Path(ckpt_path).resolve().parent.parent == output_dir.resolve()
    )
    resume_step = check_resume(cfg, ckpt_path, resuming_here)
    trainer = build_trainer(cfg, resume_step=resume_step)
    if ckpt_path is not None:
        where = "in its own directory" if resuming_here else f"into {output_dir}"
        done = progress_text(ckpt_path)
        console.print(f"Training on from {ckpt_path} ({done}) {where}", soft_wrap=True)
    if resuming_here:
        # a run that had stopped early, interrupted while it was being evaluated, stays stopped
        for callback in trainer.callbacks:
            if isinstance(callback, GoalEarlyStopping):
                callback.stay_stopped = True
    # after building: a mistake found so far is one line with nothing before it, and values left
    # as `auto` in the config (num_classes, input_shape) show resolved
    show_config(cfg, output_dir, console)
    try:
        metrics, baseline = fit_and_evaluate(cfg, task, trainer, datamodule, ckpt_path)
        if pruned_at(trainer) is not None:
            value = (
                report_pruned(cfg, trainer, started, console) if trainer.is_global_zero else None
            )
        elif trainer.is_global_zero:
            value = report_run(cfg, trainer, datamodule, metrics, baseline, started, console)
        else:
            # under DDP every rank trains and evaluates; only rank zero writes the run's files
            value = finite_or_none(metrics.get(cfg.goal.metric))
    except BaseException as exc:
        wandb_runs.finish(failed=True)
        # the folder holds this process's training (its metrics.csv, a resumed run's new steps)
        trained = trainer.global_step > (resume_step or 0) or (
            not resuming_here and (output_dir / "metrics.csv").is_file()
        )
        signals = [c.requested for c in trainer.callbacks if isinstance(c, StepCheckpoint)]
        stopped = why_it_stopped(
            cfg, started, exc, console, trained=trained, signum=next(filter(None, signals), None)
        )
        if stopped is not None:
            raise stopped from None
        raise
    # the next trial of a sweep in this process must get its own W&B run
    wandb_runs.finish()
    return value


def check_resume(cfg: DictConfig, ckpt_path: str | None, resuming_here: bool) -> int | None:
    """The global step a run resumed in its own directory continues from (None otherwise); a
    checkpoint that has already trained past `trainer.max_epochs` is one line."""
    if ckpt_path is None:
        return None
    epoch, step = checkpoint_progress(ckpt_path)
    max_epochs = int(cfg.trainer.max_epochs)
    done = epochs_done(epoch, mid_epoch(ckpt_path))
    if done > max_epochs or (done == max_epochs and not resuming_here):
        raise UserError(
            f"ckpt_path={ckpt_path} holds {done} trained epochs and trainer.max_epochs={max_epochs} "
            f"trains no further: pass trainer.max_epochs=<more than {done}>"
        )
    if resuming_here:
        remove_stale_temps(cfg.paths.output_dir)  # left by a write the interruption cut off
        return step
    return None


def why_it_stopped(
    cfg: DictConfig,
    started: float,
    exc: BaseException,
    console: Console,
    trained: bool = False,
    signum: int | None = None,
) -> UserError | None:
    """Record a run that did not finish in its summary.json and say how to go on: a Ctrl-C is
    `interrupted` with the command that resumes it; a full disk is one line (the exception to
    raise in place of the original); any other error is `failed`. A mistake found before this
    process began training leaves the folder as it was (a new run's is removed, a resumed run's
    summary kept); one found after (an image that decodes only in part) is `failed`."""
    output_dir = Path(cfg.paths.output_dir)
    resume = resume_command(output_dir)
    last = output_dir / "checkpoints" / "last.ckpt"
    if isinstance(exc, UserError):
        if trained:  # once the file is fixed, the run goes on from its last checkpoint
            write_unfinished(cfg, started, "failed", exc, resume=resume if last.is_file() else None)
        return None
    kept = _last_checkpoint_text(last)
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        # Ctrl-C or SIGTERM: Lightning shuts down and exits; last.ckpt holds the step or the
        # epoch the signal came in
        why = interruption(exc, signum)
        if last.is_file():
            write_unfinished(cfg, started, "interrupted", exc, why, resume=resume)
            console.print(f"Interrupted; {kept}. Resume with: {resume}", soft_wrap=True)
        else:
            write_unfinished(cfg, started, "interrupted", exc, why)
            console.print("Interrupted before the first epoch ended: nothing to resume.")
        return None
    full = no_space(exc)
    with contextlib.suppress(OSError):  # on a full disk the summary may not be written either
        write_unfinished(cfg, started, "failed", exc)
    if full is None:
        return None
    what = full.filename or "a file of the run"
    go_on = (
        f"free space, then resume with: {resume}" if last.is_file() else "free space and run again"
    )
    return UserError(
        f"no space left on the device writing {what} (run directory {output_dir}): the last "
        f"checkpoint saved, {kept}; {go_on}"
    )


def interruption(exc: BaseException, signum: int | None) -> str | None:
    """What stopped the run, in words: the signal the mid-epoch checkpoint acted on, or the one
    raised where the process was (Lightning's exit(1) carries it as its context)."""
    cause = exc.__context__ if isinstance(exc, SystemExit) else exc
    if signum is not None:
        name = signal.Signals(signum).name
    elif isinstance(cause, Terminated):
        name = "SIGTERM"
    elif isinstance(cause, KeyboardInterrupt):
        name = "SIGINT"
    else:
        return None
    return f"interrupted by {name}" + (" (Ctrl-C)" if name == "SIGINT" else "")


def _last_checkpoint_text(last: Path) -> str:
    if not last.is_file():
        return "no epoch had finished, so there is no checkpoint"
    try:
        return f"{last} ({progress_text(str(last))}) is intact"
    except Exception:
        return f"{last} is unreadable"


def fit_and_evaluate(
    cfg: DictConfig,
    task: Any,
    trainer: pl.Trainer,
    datamodule: Any,
    ckpt_path: str | None = None,
) -> tuple[dict[str, float], dict[str, float] | None]:
    """Fit, then measure the best checkpoint on every split (and the linear baseline beside it)."""
    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
    except RuntimeError as exc:
        if "loading state_dict" not in str(exc):
            raise
        raise UserError(
            f"ckpt_path={ckpt_path} does not fit model={part_name(cfg, 'model')} "
            f"data={part_name(cfg, 'data')}: it was trained with another model or data config; "
            "pass a checkpoint of this configuration (or the overrides it was trained with)"
        ) from exc
    if pruned_at(trainer) is not None:  # a pruned trial evaluates nothing more
        return {}, None
    splits = ("train", "val", "test") if cfg.get("test", True) else ("train", "val")
    metrics = evaluate_splits(cfg, task, datamodule, splits, best_checkpoint(trainer))
    return metrics, linear_baseline(cfg, task, datamodule)


def write_unfinished(
    cfg: DictConfig,
    started: float,
    status: str,
    exc: BaseException,
    error: str | None = None,
    **extra: Any,
) -> None:
    """A summary.json that says the run did not finish, so the directory never looks like a success;
    `error` says why in words where the exception cannot (Lightning's exit after a signal)."""
    RunSummary.unfinished(
        status,
        cfg.paths.output_dir,
        Goal.from_config(cfg.goal).as_dict(),
        error or traceback.format_exception_only(exc)[-1].strip() or type(exc).__name__,
        task_name=cfg.task_name,
        wall_time_s=round(time.perf_counter() - started, 3),
        **extra,
    ).write()


def report_run(
    cfg: DictConfig,
    trainer: pl.Trainer,
    datamodule: Any,
    metrics: dict[str, float],
    baseline: dict[str, float] | None,
    started: float,
    console: Console,
) -> float:
    """Diagnose the run; write summary.json, report.md and curves.png; print the table and panel."""
    output_dir = Path(cfg.paths.output_dir)
    goal = Goal.from_config(cfg.goal)
    task = trainer.lightning_module
    history = read_history(output_dir / "metrics.csv")
    best = best_epoch(history, goal)
    title = run_title(cfg, output_dir)
    curves = plot_curves(history, goal, best, output_dir / "curves.png", title)
    log_figure_to_loggers(trainer.loggers, curves, step=trainer.global_step)
    audit = audit_run(cfg, task, datamodule, metrics, title)
    facts = run_facts(cfg, trainer, datamodule, metrics, baseline, history, best)
    facts.audit = audit
    recorder = next((c for c in trainer.callbacks if isinstance(c, CodeFactsRecorder)), None)
    facts.code = recorder.facts if recorder is not None else None
    facts.overrides = run_overrides()
    diagnosis = diagnose(facts)
    value = finite_or_none(metrics.get(goal.metric))
    if diagnosis.verdict == "diverged":
        value = None  # a sweeper must not rank a diverged trial by its leftover metrics
    summary = RunSummary(
        status="diverged" if diagnosis.verdict == "diverged" else "completed",
        run_dir=str(output_dir),
        goal=goal.as_dict(),
        task_name=cfg.task_name,
        objective=value,
        # met when the verdict says so: the panel and the verdict never disagree
        goal_met=diagnosis.verdict == "goal_met"
        and diagnosis.case not in UNTRUSTED
        and goal.met(value),
        verdict=diagnosis.verdict,
        diagnosis=diagnosis.as_dict(),
        metrics=metrics,
        baseline=baseline,
        standard_errors=goal_standard_errors(facts),
        best_epoch=best,
        epochs_trained=len(history),
        best_checkpoint=best_checkpoint(trainer),
        wall_time_s=round(time.perf_counter() - started, 3),
        audit=None if audit is None else audit.as_dict(),
        code=None if facts.code is None else facts.code.as_dict(),
    )
    # the task's own pictures of the best checkpoint, e.g. predictions on validation images
    task.save_pictures(datamodule, output_dir, title)
    # what paired comparisons of two runs read: each val example's outcome (methodology/paired.py)
    write_outcomes(output_dir, getattr(task, "example_outcomes", {}).get("val"))
    report = write_report(output_dir / "report.md", summary, diagnosis, goal, title)
    send_to_loggers(trainer.loggers, summary, report, step=trainer.global_step)
    summary.write()

    # a sweep's trial shares the terminal with many others: one line for it
    one_line = wandb_runs.sweep_trial() is not None and not cfg.get("verbose")
    print_outcome(summary, diagnosis, goal, console, one_line=one_line)
    return float("nan") if value is None else value


def run_facts(
    cfg: DictConfig,
    trainer: pl.Trainer,
    datamodule: Any,
    metrics: dict[str, float],
    baseline: dict[str, float] | None,
    history: Any,
    best: int | None,
) -> RunFacts:
    """What the diagnosis weighs: the curves, the loss at init against chance, the model's size
    against the data's, the baseline, the noise, and the changes this config accepts."""
    task = trainer.lightning_module
    steps = next((c for c in trainer.callbacks if isinstance(c, StepLosses)), None)
    num_classes = cfg.data.get("num_classes") if "data" in cfg else None
    num_classes = int(num_classes) if isinstance(num_classes, int) else None
    classification = getattr(task, "problem", None) == "classification"
    return RunFacts(
        metrics=metrics,
        goal=Goal.from_config(cfg.goal),
        history=history,
        best=best,
        kind=task.diagnosis_kind,
        problem=getattr(task, "problem", None),
        lr=float(cfg.optimizer.lr) if "lr" in (cfg.get("optimizer") or {}) else None,
        max_epochs=int(cfg.trainer.max_epochs),
        first_steps=steps.first if steps else [],
        last_steps=steps.last if steps else [],
        chance_loss=math.log(num_classes) if classification and num_classes else None,
        n_params=sum(p.numel() for p in task.parameters() if p.requires_grad),
        num_classes=num_classes,
        sizes=datamodule.split_sizes(),
        baseline=baseline,
        noise=split_noise(getattr(task, "standard_errors", None), Goal.from_config(cfg.goal)),
        cut_short=cut_short(cfg),
        split_hint=getattr(datamodule, "explicit_splits_hint", None),
        changes=run_changes(cfg, task, datamodule),
    )


def goal_standard_errors(facts: RunFacts) -> dict[str, float] | None:
    """The goal metric's standard error on each split, as the diagnosis weighed it."""
    found = {}
    for split in ("train", "val", "test"):
        error = standard_error(facts, split)
        if error is not None and math.isfinite(error):
            found[split] = error
    return found or None


def split_noise(errors: dict[str, float] | None, goal: Goal) -> dict[str, float] | None:
    """The goal metric's standard error per split, from what the evaluation measured."""
    if not errors:
        return None
    found = {s: errors[goal.at(s)] for s in ("train", "val", "test") if goal.at(s) in errors}
    return found or None


def cut_short(cfg: DictConfig) -> str | None:
    """Why this run trains on less than its data allows (debug=fast, limits), if it does."""
    trainer = cfg.trainer
    limits = [
        f"trainer.{key}={trainer[key]}"
        for key in ("fast_dev_run", "limit_train_batches", "max_steps", "overfit_batches")
        if key in trainer
        and trainer[key] not in (None, False, 0, 1.0, -1, 0.0)
        and not (key == "limit_train_batches" and trainer[key] == 1)
    ]
    return ", ".join(limits) or None


def run_title(cfg: DictConfig, output_dir: Path) -> str:
    """What plots and reports are titled with: the run's parts and its name (a sweep's trial number)."""
    trial = wandb_runs.sweep_trial()
    name = f"{trial[0]} trial {trial[1]}" if trial else output_dir.name
    return (
        f"{cfg.task_name}: model={part_name(cfg, 'model')} data={part_name(cfg, 'data')} ({name})"
    )


def linear_baseline(cfg: DictConfig, task: Any, datamodule: Any) -> dict[str, float] | None:
    """Metrics of a linear model on the same split, unless this run is that model or it is switched off."""
    settings = cfg.get("diagnosis") or {}
    model = settings.get("baseline_model")
    if not model or part_name(cfg, "model") == model:
        return None
    if declared_problem(cfg.model) != "classification":
        return None
    from practicum.run.baseline import train_linear_baseline

    return train_linear_baseline(cfg, datamodule, model, int(settings.get("baseline_epochs", 20)))
