"""practicum installed like a package: `pip install --no-deps .` (not editable) into a venv that
reuses the installed dependencies, then `practicum-train` trains from another folder, with the
config groups it ships as package data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import ROOT, without_slurm

NOT_SHIPPED = (
    ".git",
    ".venv*",
    "logs",
    "build",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "coverage",
)


@pytest.mark.slow
def test_an_installed_practicum_trains_from_another_folder(tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    site = next((env_dir / "lib").glob("python*/site-packages"))
    # the dependencies come from the project's own environment, not a second download
    (site / "practicum_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = env_dir / "bin" / "python"
    # a copy of the project: a build writes build/ beside the sources, never into this checkout
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    installed = site / "practicum"
    assert (installed / "conf" / "train.yaml").is_file() and not (installed / "conf").is_symlink()
    shipped = {p.relative_to(ROOT / "conf") for p in (ROOT / "conf").rglob("*.yaml")}
    assert {
        p.relative_to(installed / "conf") for p in (installed / "conf").rglob("*.yaml")
    } == shipped

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = without_slurm({**os.environ, "COLUMNS": "120"})
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [
            str(env_dir / "bin" / "practicum-train"),
            "trainer.max_epochs=1",
            "data=wine",
            "model=mlp",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (summary,) = (elsewhere / "logs" / "train" / "runs").glob("*/summary.json")
    record = json.loads(summary.read_text())
    assert record["status"] == "completed" and record["epochs_trained"] == 1
    where = subprocess.run(
        [str(python), "-c", "import practicum; print(practicum.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
    )
    assert where.stdout.strip().startswith(str(site)), (where.stdout, sys.prefix)
