"""The modes of `python train.py` besides training: each runs one config, or several through the
function that runs one config (`RunOne`, which is `run.train_run`). `cli.py` picks the mode.

- train    one run (run.py);
- checks   `debug=checks`: sanity checks of a fresh model, no training;
- tune     `tune=lr`: the learning-rate range test, then (tune.apply) one run with its suggestion;
           `tune=data_size`: the learning curve over nested shares of the training split
           (search/data_size.py);
- repeats  `search.repeats=N`: one config over N seeds (search/repeats.py);
- study    `experiment=grid_vs_random`: grid vs random vs quasi-random search (search/study.py);
- autopilot `autopilot=default`: diagnose, make one change, rerun until the goal is met (autopilot/).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, open_dict
from rich.console import Console

from practicum.config import part_name
from practicum.errors import UserError

if TYPE_CHECKING:
    from practicum.run.one_run import RunOne

MODES = ("train", "checks", "tune", "repeats", "study", "autopilot")


def pick_mode(cfg: DictConfig) -> str:
    """Which mode the composed config asks for; the groups that set it say so in their YAML."""
    if cfg.get("study"):
        return "study"
    if cfg.get("autopilot"):
        return "autopilot"
    if (cfg.get("checks") or {}).get("enabled"):
        return "checks"
    if (cfg.get("tune") or {}).get("mode"):
        return "tune"
    if int((cfg.get("search") or {}).get("repeats") or 1) > 1:
        return "repeats"
    return "train"


def run_mode(mode: str, cfg: DictConfig, run_one: RunOne) -> float | None:
    modes: dict[str, Callable[[], float | None]] = {
        "train": lambda: run_one(cfg),
        "checks": lambda: sanity_checks(cfg),
        "tune": lambda: _tune(cfg, run_one),
        "repeats": lambda: _repeats(cfg, run_one),
        "study": lambda: _study(cfg, run_one),
        "autopilot": lambda: _autopilot(cfg, run_one),
    }
    return modes[mode]()


def _tune(cfg: DictConfig, run_one: RunOne) -> float | None:
    if cfg.tune.mode == "data_size":
        from practicum.search.data_size import data_size_curve

        return data_size_curve(cfg, run_one)
    return lr_range_then_train(cfg, run_one)


def _repeats(cfg: DictConfig, run_one: RunOne) -> float | None:
    from practicum.search.repeats import repeat_over_seeds

    return repeat_over_seeds(cfg, run_one)


def _study(cfg: DictConfig, run_one: RunOne) -> float | None:
    from practicum.search.study import run_study

    return run_study(cfg, run_one)


def _autopilot(cfg: DictConfig, run_one: RunOne) -> float | None:
    from practicum.autopilot import run_autopilot

    return run_autopilot(cfg, run_one)


def sanity_checks(cfg: DictConfig) -> float:
    """`debug=checks`: run the checks on a fresh model, print the table, write checks.json;
    return the number of checks that failed."""
    from practicum.config import ChecksConfig, settings
    from practicum.methodology.checks import print_checks, run_checks, unsupported, write_checks
    from practicum.run.build import build_datamodule, build_task

    console = Console()
    output_dir = _run_dir(cfg)
    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    why_not = unsupported(task, datamodule)
    if why_not:
        raise UserError(
            f"debug=checks cannot check model={part_name(cfg, 'model')} "
            f"data={part_name(cfg, 'data')}: {why_not}"
        )
    started = time.perf_counter()
    results = run_checks(task, datamodule, settings(cfg.checks, ChecksConfig, "checks"))
    print_checks(results, console)
    path = write_checks(results, output_dir, seconds=time.perf_counter() - started)
    failed = [r.name for r in results if not r.passed]
    verdict = f"[red]failed: {', '.join(failed)}[/red]" if failed else "[green]all passed[/green]"
    console.print(f"Sanity checks {verdict}.  Written to {path}", soft_wrap=True)
    return float(len(failed))


def lr_range_then_train(cfg: DictConfig, run_one: RunOne) -> float | None:
    """`tune=lr`: run the range test, save its plot and numbers, and (tune.apply) train with its
    suggestion in the same run directory; without apply, return the suggestion."""
    import lightning.pytorch as pl

    from practicum.config import TuneConfig, settings
    from practicum.methodology.lr_range import lr_range_test
    from practicum.platform.files import write_json
    from practicum.run.build import build_datamodule, build_task

    console = Console()
    output_dir = _run_dir(cfg)
    tune = settings(cfg.tune, TuneConfig, "tune")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    result = lr_range_test(build_task(cfg), datamodule, seed=int(cfg.seed), **tune.test_kwargs())
    title = f"{cfg.task_name}: model={part_name(cfg, 'model')} data={part_name(cfg, 'data')}"
    result.save_plot(output_dir / "lr_range.png", f"{title} ({output_dir.name})")
    write_json(output_dir / "lr_range.json", result.as_dict())
    console.print(
        f"LR range test: suggested lr {result.suggestion:.3g} (the loss was lowest at "
        f"{result.min_loss_lr:.3g}); plot: {output_dir / 'lr_range.png'}",
        soft_wrap=True,
    )
    if not tune.apply:
        return float(result.suggestion)
    with open_dict(cfg):
        cfg.optimizer.lr = float(result.suggestion)
    console.print(f"Training with optimizer.lr={result.suggestion:.3g}")
    return run_one(cfg)


def _run_dir(cfg: DictConfig) -> Path:
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir
