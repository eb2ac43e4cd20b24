"""The checks of a command line that need no config: an unknown group option, an unwritable log
folder, the SLURM launcher off a cluster, an interval without a search; and the default search
space of a model without one. They read the arguments (with Hydra's override parser) and conf/'s
files, before Hydra composes the one config of the command."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from practicum.config import CONF_DIR
from practicum.config import command_line as overrides
from practicum.errors import UserError


def config_dirs(argv: list[str], conf_dir: Path = CONF_DIR) -> list[Path] | None:
    """conf/ and the folders `hydra.searchpath=[file://...]` adds; None when a search path entry
    is not a folder this check can read (a `pkg://` one): then Hydra alone checks the choices."""
    dirs = [conf_dir]
    for o in overrides.parse(argv):
        if o.key_or_group != "hydra.searchpath" or o.is_delete():
            continue
        entries = o.value()
        for entry in entries if isinstance(entries, list) else [entries]:
            text = str(entry)
            if not text.startswith("file://"):
                return None
            dirs.append(Path(text.removeprefix("file://")))
    return dirs


def check_group_choices(argv: list[str], conf_dir: Path = CONF_DIR) -> None:
    """`model=nope` gets one line listing the real options, before Hydra composes anything. The
    options are the files in conf/<group>/ and in the same group of every `hydra.searchpath`
    folder, so a user's own configs need no edit of the project."""
    dirs = config_dirs(argv, conf_dir)
    if dirs is None:
        return
    globs = overrides.globs(argv)
    for group, chosen in [*overrides.choices(argv).items(), *((g, []) for g in globs)]:
        if group == "hydra" or group.startswith("hydra/") or not (conf_dir / group).is_dir():
            continue
        options = sorted({p.stem for folder in dirs for p in (folder / group).glob("*.yaml")})
        shown = [f"conf/{group}/", *(f"{folder / group}/" for folder in dirs[1:])]
        where = " and ".join(shown)
        if group in globs and not globs[group].filter(options):
            raise UserError(
                f"{group}=glob({','.join(globs[group].include)}) matches no {group}: "
                f"choose among {', '.join(options)} (files in {where})"
            )
        for choice in chosen:
            if choice and choice not in ("null", "None") and choice not in options:
                raise UserError(
                    f"unknown {group} '{choice}': choose one of {', '.join(options)} (files in {where})"
                )
    # the report's baseline is a model config too (trained where no closed form fits)
    baseline = overrides.values(argv).get("diagnosis.baseline_model")
    if isinstance(baseline, str) and baseline not in ("null", "None"):
        models = sorted({p.stem for folder in dirs for p in (folder / "model").glob("*.yaml")})
        if baseline not in models:
            raise UserError(
                f"diagnosis.baseline_model={baseline} is not a model: choose one of "
                f"{', '.join(models)} (files in conf/model/), or null for no baseline"
            )


def check_launcher(argv: list[str]) -> None:
    """The SLURM launcher off a cluster, or a parallel launcher told to run 0 trials at once, is
    one line, not the launcher's traceback."""
    values = overrides.values(argv)
    launcher = values.get("hydra/launcher")
    n_jobs = values.get("hydra.launcher.n_jobs")
    if "hydra.launcher.n_jobs" in values and (
        not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0
    ):
        raise UserError(
            f"hydra.launcher.n_jobs={n_jobs} is invalid: give the trials to run at once (a whole "
            "number >= 1), or -1 for one per core"
        )
    if launcher == "slurm" and shutil.which("srun") is None:
        raise UserError(
            "hydra/launcher=slurm needs a SLURM cluster and this machine has no `srun` on PATH: "
            "run the command on a login node, or try the same path here with hydra/launcher=submitit_local"
        )


def check_sweep_kinds(argv: list[str]) -> None:
    """`interval()` is sampled, not listed: only a search (Optuna's sweeper) can sweep it."""
    chosen = overrides.values(argv)
    if chosen.get("search") or chosen.get("hydra/sweeper"):
        return
    for o in overrides.parse(argv):
        if o.is_interval_sweep():
            raise UserError(
                f"{o.input_line} is an interval, which only a search samples: add search=random "
                "(or quasi_random, tpe), or list values (key=0.1,0.2) or a range (key=range(1,4))"
            )


def check_settings(argv: list[str]) -> None:
    """A setting of a group practicum owns (`search.n_trials=0`) out of its declared range is one
    line before Hydra starts: a sweep's sweeper reads its settings before any trial is checked."""
    import dataclasses

    from practicum.config.checker import example_value, invalid
    from practicum.config.constraints import Constraint
    from practicum.config.schemas import SCHEMAS

    for key, value in overrides.values(argv).items():
        group, _, name = str(key).partition(".")
        schema = SCHEMAS.get(group)
        if schema is None or not name or "." in name or isinstance(value, str):
            continue  # a value of the wrong type is Hydra's to refuse, as it composes
        field = next((f for f in dataclasses.fields(schema) if f.name == name), None)
        constraint = field.metadata.get("constraint") if field else None
        if isinstance(constraint, Constraint) and constraint.problem(value):
            example = example_value(field.default, field.type, constraint)
            raise invalid(str(key), name, value, constraint.rule, example)


SPACE_CHOICE = "search/space@hydra.sweeper.params"


def default_search_space(argv: list[str], conf_dir: Path = CONF_DIR) -> list[str]:
    """`search=random model=<m>` searches conf/search/space/<m>.yaml, or default.yaml (learning rate
    and weight decay) when <m> has none: a new model needs no search file to be tuned."""
    values = overrides.values(argv)
    search, model = values.get("search"), str(values.get("model", ""))
    space_chosen = any(o.key_or_group == "search/space" for o in overrides.parse(argv))
    if not search or not model.isidentifier() or space_chosen:
        return argv
    search_file = conf_dir / "search" / f"{search}.yaml"
    uses_model_space = search_file.is_file() and SPACE_CHOICE in search_file.read_text()
    if not uses_model_space or (conf_dir / "search" / "space" / f"{model}.yaml").is_file():
        return argv
    print(
        f"practicum: model={model} has no conf/search/space/{model}.yaml: "
        "searching conf/search/space/default.yaml (learning rate, weight decay)",
        file=sys.stderr,
    )
    return [*argv, f"{SPACE_CHOICE}=default"]


NOT_A_RUN = ("--help", "-h", "--hydra-help", "--info", "--cfg", "-c", "--shell-completion", "-sc")


def is_a_run(argv: list[str]) -> bool:
    """False for the flags that print something (help, the config) instead of running."""
    return not any(arg.split("=")[0] in NOT_A_RUN for arg in argv)


def is_a_sweep(argv: list[str]) -> bool:
    return any(arg in ("-m", "--multirun") for arg in argv) or any(
        o.is_sweep_override() for o in overrides.parse(argv)
    )


def check_log_dir(argv: list[str], cwd: Path | None = None) -> None:
    """An unwritable `paths.log_dir`, `hydra.run.dir`, `hydra.sweep.dir` or logger folder is one
    line before Hydra tries to create a run directory there. Nothing is left behind by the check."""
    if not is_a_run(argv):
        return
    values = overrides.values(argv)
    folders = {"paths.log_dir": Path(values.get("paths.log_dir", (cwd or Path.cwd()) / "logs"))}
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        if values.get(key) is not None:
            folders[key] = Path(str(values[key]))
    # a logger's own folder (logger.tensorboard.save_dir=...), made only once training starts
    for key, value in values.items():
        if re.fullmatch(r"logger\.\w+\.(save_)?dir", str(key)) and value and "${" not in str(value):
            folders[str(key)] = Path(str(value))
    for key, folder in folders.items():
        problem = _unwritable(folder)
        if problem:
            raise UserError(
                f"{key}={folder} cannot be written ({problem}): pass {key}=<a directory you can write>"
            )


def _unwritable(folder: Path) -> str | None:
    """Why files cannot be created in `folder` (or in the folders it would be made in), if so."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        probe = tempfile.mkdtemp(prefix=".practicum-write-test-", dir=existing)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.rmdir(probe)
    return None
