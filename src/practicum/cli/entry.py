"""Command-line entry points behind `python train.py` and `python eval.py`.

Nothing at module level imports torch or Lightning, so `--help` and `--cfg job` answer at once;
the run itself imports them when it starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from practicum.cli.argv_checks import (
    check_group_choices,
    check_launcher,
    check_log_dir,
    check_settings,
    check_sweep_kinds,
    default_search_space,
    is_a_run,
    is_a_sweep,
)
from practicum.cli.process_state import exit_code, restored
from practicum.cli.sweep_checks import check_pinned_knobs
from practicum.config import CONF_DIR, register_schemas
from practicum.config import command_line as overrides
from practicum.config.trust import hydra_whitelist
from practicum.errors import (
    Terminated,
    UserError,
    composition_errors_in_one_line,
    find_user_error,
    report,
)
from practicum.platform.files import register_resolvers
from practicum.run import resume

USER_ERROR_EXIT = 2
CHECKS_FAILED_EXIT = 1


_sweep_dir: list[str] = []  # the folder of the sweep this command runs, once claimed


def _discard_unused_run_dir(output_dir: str | None, log_dir: str | None = None) -> None:
    """Remove a run directory a refused run created, so it never looks like a run that happened.
    Only a directory holding nothing but what is written before training starts goes: a run with a
    checkpoint, a summary or metrics (one being resumed) is never touched."""
    if not output_dir:
        return
    path = Path(output_dir)
    if not path.is_dir():
        return
    before_training = {"config_tree.txt", "hparams.yaml", ".practicum_claim"}
    for item in path.rglob("*"):
        inside_hydra = ".hydra" in item.relative_to(path).parts
        if item.is_file() and not (
            inside_hydra or item.name in before_training or item.suffix == ".log"
        ):
            return
    shutil.rmtree(path, ignore_errors=True)
    # and the folders made for it alone (logs/<task>/runs/), up to the log folder
    top = Path(log_dir).resolve() if log_dir else None
    parent = path.resolve().parent
    while top is not None and parent != top and top in parent.parents:
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break
        parent = parent.parent


def _discard_unused_sweep_dir(folder: Path) -> None:
    """Remove a sweep's folder that holds no trial (each trial is a subfolder of it)."""
    if folder.is_dir() and not any(p.is_dir() for p in folder.iterdir()):
        shutil.rmtree(folder, ignore_errors=True)


def _guarded(run: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """User mistakes become one line and a non-zero exit; in a sweep, any error is a failed trial."""

    def task_function(cfg: DictConfig) -> Any:
        from hydra.core.hydra_config import HydraConfig

        hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
        sweeping = hydra_cfg is not None and getattr(hydra_cfg.mode, "name", "") == "MULTIRUN"
        if sweeping:
            _cap_threads_for_parallel_jobs(cfg, hydra_cfg.launcher)
        try:
            if sweeping:  # a single run was checked before its run directory was made
                from practicum.config.validate import validate

                validate(cfg)
            return run(cfg)
        except Exception as exc:
            user_error = find_user_error(exc)
            if sweeping:
                # the sweep goes on: record the trial as refused or failed, give the sweeper NaN
                logging.getLogger(__name__).exception("trial failed")
                report(f"trial failed: {user_error or exc}")
                _mark_unfinished(Path(hydra_cfg.runtime.output_dir), cfg, exc, user_error)
                return float("nan")
            if user_error is None:
                raise
            report(str(user_error))
            if hydra_cfg is not None:
                log_dir = (cfg.get("paths") or {}).get("log_dir")
                _discard_unused_run_dir(hydra_cfg.runtime.output_dir, log_dir)
            sys.exit(USER_ERROR_EXIT)

    return task_function


def _mark_unfinished(
    output_dir: Path, cfg: DictConfig, exc: BaseException, user_error: UserError | None
) -> None:
    """A trial that stopped before writing its summary still gets one: refused (a mistake in its
    config, found before training) or failed."""
    from practicum.methodology.run_summary import RunSummary

    if RunSummary.path(output_dir).exists():
        return
    goal = cfg.get("goal") or {}
    error = user_error or exc
    RunSummary.unfinished(
        "refused" if user_error is not None else "failed",
        output_dir,
        {key: goal.get(key) for key in ("metric", "mode", "target")},
        str(error).splitlines()[0] if str(error) else type(error).__name__,
        task_name=cfg.get("task_name"),
    ).write()


def _cap_threads_for_parallel_jobs(cfg: DictConfig, launcher: DictConfig) -> None:
    """Parallel jobs on one machine share its cores: cap each job's torch threads.

    local_parallel (or joblib): cores // n_jobs; submitit: its cpus_per_task, when set.
    """
    if cfg.get("num_threads") is not None:
        return
    target = str(launcher.get("_target_", "")).lower()
    cores = os.cpu_count() or 1
    threads = None
    if ("local_parallel" in target or "joblib" in target) and launcher.get("n_jobs"):
        jobs = launcher.n_jobs
        threads = max(1, cores // (cores if jobs < 0 else min(jobs, cores)))
    elif "submitit" in target and launcher.get("cpus_per_task"):
        threads = int(launcher.cpus_per_task)
    if threads is None:
        return
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    with open_dict(cfg):
        cfg.num_threads = threads


def run_train_config(cfg: DictConfig) -> float | None:
    """Run a composed, validated train config in the mode it asks for, giving the mode the
    function that runs one config."""
    from practicum.cli.modes import pick_mode, run_mode
    from practicum.run.one_run import train_run

    if cfg.get("num_threads"):
        import torch

        torch.set_num_threads(int(cfg.num_threads))
    return run_mode(pick_mode(cfg), cfg, train_run)


def _train(cfg: DictConfig) -> float | None:
    from practicum.cli.modes import pick_mode

    result = run_train_config(cfg)
    if pick_mode(cfg) == "checks" and result and not _sweeping():
        sys.exit(CHECKS_FAILED_EXIT)  # a failed check is a finding, not a success
    return result


def _sweeping() -> bool:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN"


def _evaluate(cfg: DictConfig) -> float | None:
    _refuse_unread_keys(cfg, "eval")
    from practicum.run.evaluate import evaluate_run

    return evaluate_run(cfg)


def entry_keys(command: str) -> frozenset[str]:
    """The top-level keys conf/<command>.yaml composes: its own and its default groups'."""
    node = OmegaConf.to_container(OmegaConf.load(CONF_DIR / f"{command}.yaml"))
    defaults = node.pop("defaults", [])
    groups = {str(k) for entry in defaults if isinstance(entry, dict) for k in entry}
    return frozenset(set(map(str, node)) | groups)


def _refuse_unread_keys(cfg: DictConfig, command: str) -> None:
    """eval.py and predict.py rebuild the model and data from the checkpoint's config: a group or
    key added on their command line (`+data=wine`, `+model.net.depth=3`) would be ignored."""
    unread = sorted(str(key) for key in cfg if str(key) not in entry_keys(command))
    it = "it" if len(unread) == 1 else "them"
    if unread:
        raise UserError(
            f"{command}.py does not read {', '.join(unread)}: it rebuilds the model and data from "
            f"the config stored in the checkpoint. Drop {it}; to change {it}, train a run with "
            "the change and pass its checkpoint"
        )


def _predict(cfg: DictConfig) -> int:
    _refuse_unread_keys(cfg, "predict")
    from practicum.run.predict import predict_run

    return predict_run(cfg)


def is_another_rank(argv: list[str]) -> bool:
    """A DDP process Lightning started for rank 1, 2, ...: it reruns the command on the saved config
    of the run rank 0 checked and writes, so none of the checks of a new run apply to it."""
    rerun = any(arg in ("--experimental-rerun", "-cp", "--config-path") for arg in argv)
    return rerun or os.environ.get("LOCAL_RANK", "0") != "0"


def claim_sweep_dir(config_name: str, argv: list[str]) -> list[str]:
    """A sweep's folder, claimed here and passed on as `hydra.sweep.dir=`: its trials may run in
    other processes (submitit, SLURM), which must all write into this one folder. A search's
    command line is checked against its space first, before the folder exists."""
    if not is_a_run(argv) or not is_a_sweep(argv):
        return argv
    given = "hydra.sweep.dir" in overrides.values(argv)
    if given and not overrides.values(argv).get("search"):
        return argv
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    fixed = [o.input_line for o in overrides.parse(argv) if not o.is_sweep_override()]
    try:
        with initialize_config_dir(str(CONF_DIR), job_name=config_name):
            cfg = compose(config_name, overrides=fixed, return_hydra_config=True)
            check_pinned_knobs(cfg, argv)
            if given:
                return argv
            HydraConfig.instance().set_config(cfg)
            folder = OmegaConf.select(cfg, "hydra.sweep.dir")
    except UserError:
        raise
    except Exception:  # Hydra reports a config it cannot compose itself, in its own words
        return argv
    plain = all(c.isalnum() or c in "_./-:+@" for c in str(folder))
    value = folder if plain else "'" + str(folder).replace("\\", "\\\\").replace("'", "\\'") + "'"
    return [*argv, f"hydra.sweep.dir={value}"]


def _main(config_name: str, argv: list[str], run: Callable[[DictConfig], Any]) -> None:
    register_schemas()
    register_resolvers()
    # a log record that cannot be written (a full disk) must not print a traceback of its own
    logging.raiseExceptions = False
    with composition_errors_in_one_line(USER_ERROR_EXIT):
        try:
            whitelist = hydra_whitelist()
            if not is_another_rank(argv):
                check_group_choices(argv)
                check_log_dir(argv)
                check_launcher(argv)
                check_sweep_kinds(argv)
                check_settings(argv)
                if config_name == "train":
                    argv = default_search_space(resume.plan(argv))
                argv = claim_sweep_dir(config_name, argv)
                folder = overrides.values(argv).get("hydra.sweep.dir")
                if folder and is_a_sweep(argv):
                    _sweep_dir.append(str(folder))
        except UserError as exc:
            report(str(exc))
            resume.release_unused_claim()
            sys.exit(USER_ERROR_EXIT)
        resumed = overrides.values(argv).get("ckpt_path") == "last"
        if config_name == "train" and resumed and is_a_run(argv) and not is_another_rank(argv):
            resume.keep_config_record(Path(str(overrides.values(argv)["hydra.run.dir"])))
        sys.argv[1:] = argv
        entry = hydra.main(
            config_path=str(CONF_DIR),
            config_name=config_name,
            execution_whitelist=whitelist,
        )(_guarded(run))
        try:
            entry()
        finally:
            resume.release_unused_claim()


COMMANDS: dict[str, Callable[[DictConfig], Any]] = {
    "train": _train,
    "eval": _evaluate,
    "predict": _predict,
}


def main(argv: Sequence[str] | None = None, command: str = "train") -> int:
    """`python <command>.py *argv` (command: train, eval or predict) in this process; returns the
    exit code. The process is left as it was found (see `restored`), so a test, a
    notebook or another tool can call it many times."""
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {', '.join(COMMANDS)}, not {command!r}")
    args = list(sys.argv[1:] if argv is None else argv)
    script = sys.argv[0] if argv is None else f"{command}.py"
    _sweep_dir.clear()
    with restored([script, *args]), terminated_as_interrupted():
        try:
            _main(command, args, COMMANDS[command])
        except SystemExit as exc:
            # Lightning's graceful shutdown after a Ctrl-C or SIGTERM during fit or test ends in
            # exit(1), raised while it handled that interruption: the command was interrupted
            if exc.code == 1 and isinstance(exc.__context__, KeyboardInterrupt):
                return interrupted(exc.__context__, args)
            return exit_code(exc.code)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM, in any phase
            return interrupted(exc, args)
        except Exception as exc:  # what the interpreter does with it, without ending this process
            user_error = find_user_error(exc)
            if user_error is None:
                traceback.print_exc()
                return 1
            # a sweep's own settings, found by the sweeper before any trial (its trials' mistakes
            # are failed trials): one line, and the sweep's folder goes if no trial ran in it
            report(str(user_error))
            if _sweep_dir:
                _discard_unused_sweep_dir(Path(_sweep_dir[-1]))
            return USER_ERROR_EXIT
    return 0


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def terminated_as_interrupted() -> Any:
    """SIGTERM handled as Ctrl-C for the command's duration (the previous handler put back).
    Not inside a SLURM job: there submitit owns the signals that preempt and requeue it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or os.environ.get("SLURM_JOB_ID"):
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted(exc: KeyboardInterrupt, argv: list[str]) -> int:
    """One line for a command stopped by Ctrl-C or SIGTERM (a run has said how to resume it);
    for a sweep, how to resume its interrupted trials and summarize it. Exit 130 or 143."""
    code = 143 if isinstance(exc, Terminated) else 130
    how = "SIGTERM" if code == 143 else "Ctrl-C"
    if _sweep_dir:
        folder = _sweep_dir[-1]
        line = (
            f"interrupted ({how}): the sweep in {folder} stopped; each trial that was running is "
            "`interrupted` and its summary.json holds the command that resumes it; then "
            f"summarize with: practicum-summarize {folder}"
        )
    else:
        line = f"interrupted ({how})"
    print(f"practicum: {line}", file=sys.stderr, flush=True)
    return code


def train() -> None:
    """`python train.py [overrides]`: compose, build, fit, test, report."""
    sys.exit(main(command="train"))


def evaluate() -> None:
    """`python eval.py ckpt_path=...`: rebuild a checkpoint's model and data, test it."""
    sys.exit(main(command="eval"))


def predict() -> None:
    """`python predict.py ckpt_path=... input=...`: a trained classifier's predictions for new inputs."""
    sys.exit(main(command="predict"))
