"""Shared helpers: compose practicum's real config and run the real flow in a temporary directory."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf, open_dict

from practicum.cli.in_process import Completed, invoke
from practicum.config import compose

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist's workers share the cores, as a parallel sweep's trials do: one thread each
    # (set before torch is imported; the processes a test starts inherit it)
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

# a suite started in the background (`make test &`) inherits an ignored SIGINT, and so would the
# runs it starts: the Ctrl-C tests need the signal to reach them
signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# rich sizes its consoles from COLUMNS when they are made: the width a user's wide terminal has
os.environ["COLUMNS"] = "120"

# the client commands by which practicum (and submitit) find a SLURM cluster
SLURM_COMMANDS = {"srun", "sbatch", "salloc", "squeue", "sinfo", "sacct", "scancel", "scontrol"}


def path_without_slurm(path: str) -> str:
    """PATH with SLURM's client commands hidden: each folder that holds `srun` is replaced by a
    folder of links to everything else in it. Tests outside the `slurm` marker run the same on a
    machine that is a SLURM node (make test-slurm starts one here) as on one that is not."""
    folders = []
    for folder in path.split(os.pathsep):
        if not folder or not (Path(folder) / "srun").exists():
            folders.append(folder)
            continue
        digest = hashlib.sha1(folder.encode()).hexdigest()[:12]
        shadow = Path(tempfile.gettempdir()) / f"practicum-no-slurm-{os.getuid()}" / digest
        if not shadow.is_dir():
            building = shadow.with_name(f"{digest}.{os.getpid()}")
            building.mkdir(parents=True, exist_ok=True)
            for entry in Path(folder).iterdir():
                if entry.name not in SLURM_COMMANDS and not (building / entry.name).exists():
                    (building / entry.name).symlink_to(entry)
            with contextlib.suppress(OSError):  # another test process built it first
                building.rename(shadow)
        folders.append(str(shadow))
    return os.pathsep.join(folders)


def without_slurm(env: dict[str, str]) -> dict[str, str]:
    return {**env, "PATH": path_without_slurm(env.get("PATH", os.defpath))}


def compose_train(
    tmp_path: Path, overrides: list[str] = (), config_name: str = "train"
) -> DictConfig:
    """The config `python train.py <overrides>` would get, writing under `tmp_path`."""
    cfg = compose(CONF_DIR, config_name, overrides)
    with open_dict(cfg):
        cfg.paths.root_dir = str(tmp_path)
        cfg.paths.output_dir = str(tmp_path / "run")
    return cfg


def search_space(model: str, search: str = "random") -> dict[str, str]:
    """The space `python train.py -m search=<search> model=<model>` samples: the model's file of
    conf/search/space/ and the files it names, as Hydra composes them (`hydra.sweeper.params`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from practicum.config import register_schemas

    register_schemas()
    with initialize_config_dir(str(CONF_DIR)):
        cfg = hydra_compose(
            "train", [f"model={model}", f"search={search}"], return_hydra_config=True
        )
    return OmegaConf.to_container(cfg.hydra.sweeper.params)


def train(tmp_path: Path, overrides: list[str] = ()) -> tuple[float | None, dict[str, Any], Path]:
    """Validate and train in-process, as the CLI does; return (goal value, summary.json, run dir)."""
    from practicum.cli import run_train_config
    from practicum.config.validate import validate

    cfg = compose_train(tmp_path, ["callbacks.progress_bar=null", *overrides])
    validate(cfg)
    value = run_train_config(cfg)
    run_dir = Path(cfg.paths.output_dir)
    return value, json.loads((run_dir / "summary.json").read_text()), run_dir


class TrainedRuns:
    """Runs trained once per test session and shared by every test that asks for the same
    overrides, whichever pytest-xdist worker asks first (the others wait on a file lock). A test
    reads a shared run and never writes into it: one that changes a run trains its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def folder(self, overrides: list[str]) -> Path:
        return self.root / hashlib.sha1("\0".join(overrides).encode()).hexdigest()[:16]

    def get(self, overrides: list[str]) -> tuple[dict[str, Any], Path]:
        """(summary.json, run dir) of `python train.py <overrides>`, trained in-process once."""
        from filelock import FileLock

        folder = self.folder(overrides)
        with FileLock(f"{folder}.lock"):
            summary = folder / "run" / "summary.json"
            if not summary.exists():
                shutil.rmtree(folder, ignore_errors=True)
                train(folder, overrides)
        return json.loads(summary.read_text()), folder / "run"


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory) -> TrainedRuns:
    base = tmp_path_factory.getbasetemp()
    # under pytest-xdist each worker has a folder of its own; the session's is their parent
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return TrainedRuns(shared / "trained")


# the run the resume tests interrupt (SIGKILL, Ctrl-C) and compare, bit for bit, with the same run
# uninterrupted: trained once, as a process of its own, for all of them
RESUMED_RUN = [
    "trainer=deterministic",
    "trainer.max_epochs=8",
    "callbacks.early_stopping.patience=100",
    "callbacks.progress_bar=null",
    "diagnosis.baseline_model=null",
    "model=mlp",
    "model.net.dropout=0.2",
]


def start_training(*args: str) -> subprocess.Popen:
    """`python train.py *args` as a process of its own, one thread, its output in `stdout`."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        env=without_slurm(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="session")
def uninterrupted_run(trained_runs: TrainedRuns) -> Path:
    """The run directory of RESUMED_RUN trained whole, in a process, once per session."""
    from filelock import FileLock

    folder = trained_runs.folder(["process", *RESUMED_RUN])
    with FileLock(f"{folder}.lock"):
        if not (folder / "summary.json").exists():
            shutil.rmtree(folder, ignore_errors=True)
            process = start_training(*RESUMED_RUN, f"hydra.run.dir={folder}")
            output = process.communicate(timeout=600)[0]
            assert process.returncode == 0, output[-3000:]
    return folder


def wait_for(condition, timeout: float = 300, what: str = "the condition") -> None:
    """Poll `condition()` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.01)


def run_cli(
    script: str,
    *args: str,
    cwd: Path | None = None,
    timeout: int = 300,
    env: dict[str, str] | None = None,
) -> Completed:
    """`python train.py ...` (or eval.py, predict.py) as a user would run it from the project root,
    in this process (`practicum.cli.invoke`), with `env` added to the environment: the exit code
    and what it printed. pytest-timeout bounds it; `timeout` is kept for the calls that name one."""
    added = {"COLUMNS": "120", "PATH": path_without_slurm(os.environ.get("PATH", os.defpath))}
    return invoke(Path(script).stem, *args, cwd=cwd or ROOT, env={**added, **(env or {})})


def run_process(
    script: str, *args: str, cwd: Path | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """`python train.py ...` as a process of its own: for what only a process shows (signals, the
    imports of a fresh interpreter, DDP)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning", "COLUMNS": "120"}
    env = without_slurm(env)
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def csv_table(tmp_path: Path) -> Path:
    """A real CSV file: the wine data with string labels, as a user might export it."""
    from sklearn.datasets import load_wine

    wine = load_wine()
    path = tmp_path / "wine.csv"
    header = [f"f{i}" for i in range(wine.data.shape[1])] + ["label"]
    rows = [
        ",".join(f"{v:.4f}" for v in x) + f",{wine.target_names[y]}"
        for x, y in zip(wine.data, wine.target, strict=True)
    ]
    path.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n")
    return path
