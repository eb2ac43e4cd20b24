"""A new project from the template: copier generates it, or the rename script turns a fork into it.

The generated project runs its own smoke tests (`pytest -m smoke`) under its new name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself depends on tomli there
    import tomli as tomllib

SCRIPT = ROOT / "scripts" / "rename_project.py"
ANSWERS = {
    "project_name": "Leaf Classifier",
    "package_name": "leafnet",
    "author_name": "Ada Lovelace",
}
NOTE = "Generated from the practicum template."
PYTEST_SMOKE = [sys.executable, "-m", "pytest", "-m", "smoke", "-q", "-p", "no:cacheprovider"]
# git needs an identity for the commit copier makes of a checkout's uncommitted changes
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "template test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "template test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}
# a download of the repository: no git, no environment, no runs
DOWNLOAD = shutil.ignore_patterns(".git", ".venv*", "logs")
# a fork (a clone): nothing that git ignores
FORK = shutil.ignore_patterns(
    ".git", ".venv*", "logs", "__pycache__", "*_cache", "*.egg-info", "results"
)


def copier_copy(src: Path, dst: Path) -> subprocess.CompletedProcess:
    """`copier copy --trust`, as the README has it; HEAD, not the latest tag, for a git checkout."""
    data = [arg for key, value in ANSWERS.items() for arg in ("--data", f"{key}={value}")]
    command = ["copier", "copy", "--trust", "--defaults", "--quiet", "--vcs-ref", "HEAD", *data]
    return subprocess.run(
        [sys.executable, "-m", *command, str(src), str(dst)],
        env={**os.environ, **GIT_IDENTITY},
        capture_output=True,
        text=True,
        timeout=300,
    )


def rename(dest: Path, package: str = "leafnet") -> subprocess.CompletedProcess:
    args = ["--package", package, "--name", "Leaf Classifier", "--author", "Ada Lovelace"]
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--dest", str(dest)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def project_files(root: Path) -> set[str]:
    """The project's files; bytecode and run outputs appear once its code has run."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and "logs" not in p.parts
    }


def mentions_of_the_template(root: Path) -> list[str]:
    """Every line that still names practicum, as 'file: line'."""
    found = []
    for name in sorted(project_files(root)):
        if name == ".copier-answers.yml":  # copier's record of the template's path
            continue
        try:
            text = (root / name).read_text()
        except UnicodeDecodeError:
            continue
        found += [f"{name}: {line}" for line in text.splitlines() if "practicum" in line]
    return found


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("generated") / "leaf-classifier"
    result = copier_copy(ROOT, dst)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return dst


@pytest.mark.e2e
def test_copier_generates_a_renamed_project(generated: Path):
    assert (generated / "src" / "leafnet" / "cli" / "entry.py").is_file()
    assert (generated / "src" / "leafnet" / "conf").resolve() == (generated / "conf").resolve()
    assert not (generated / "src" / "practicum").exists()
    for template_only in ("copier.yml", "scripts/rename_project.py", "tests/test_template.py"):
        assert not (generated / template_only).exists(), template_only
    assert mentions_of_the_template(generated) == [f"README.md: {NOTE}"]
    pyproject = tomllib.loads((generated / "pyproject.toml").read_text())["project"]
    assert pyproject["name"] == "leafnet"
    assert pyproject["authors"] == [{"name": "Ada Lovelace"}]
    assert pyproject["scripts"]["leafnet-train"] == "leafnet.cli:train"
    readme = (generated / "README.md").read_text()
    assert readme.startswith(f"# Leaf Classifier\n\n{NOTE}\n")
    assert "## Start your own project" not in readme
    assert "Hydra project that puts" in readme and "Fork it" not in readme
    assert "leafnet: error:" in readme  # the shown error lines follow the new name
    answers = (generated / ".copier-answers.yml").read_text()
    assert "package_name: leafnet" in answers


@pytest.mark.slow
def test_a_plain_folder_generates_the_same_project(generated: Path, tmp_path: Path):
    download = tmp_path / "download"
    shutil.copytree(ROOT, download, ignore=DOWNLOAD, symlinks=True)
    result = copier_copy(download, tmp_path / "from-folder")
    assert result.returncode == 0, result.stderr[-3000:]
    ignored = {".copier-answers.yml"}
    assert project_files(tmp_path / "from-folder") - ignored == project_files(generated) - ignored


@pytest.mark.slow
def test_the_generated_project_passes_its_smoke_tests(generated: Path):
    env = {**os.environ, "PYTHONPATH": str(generated / "src")}
    result = subprocess.run(
        PYTEST_SMOKE, cwd=generated, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    counted = re.search(r"(\d+) passed", result.stdout)
    here = subprocess.run(
        [*PYTEST_SMOKE, "--collect-only"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    selected = re.search(r"(\d+)(?:/\d+)? tests? (?:collected|selected)", here.stdout)
    assert counted and selected and int(counted.group(1)) == int(selected.group(1)), (
        result.stdout[-1000:],
        here.stdout[-500:],
    )
    refused = subprocess.run(
        [sys.executable, "train.py", "optimizer.lr=-1"],
        cwd=generated,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith("leafnet: error: optimizer.lr=-1"), refused.stderr


def test_a_fork_renames_in_place(tmp_path: Path):
    fork = tmp_path / "fork"
    shutil.copytree(ROOT, fork, ignore=FORK, symlinks=True)
    result = rename(fork)
    assert result.returncode == 0, result.stderr
    assert (fork / "src" / "leafnet").is_dir() and not (fork / "src" / "practicum").exists()
    assert (fork / "conf" / "hydra" / "sweeper" / "leafnet_optuna.yaml").is_file()
    assert mentions_of_the_template(fork) == [f"README.md: {NOTE}"]
    helped = subprocess.run(
        [sys.executable, "train.py", "--help"],
        cwd=fork,
        env={**os.environ, "PYTHONPATH": str(fork / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert helped.returncode == 0 and "leafnet" in helped.stdout, helped.stderr[-2000:]


@pytest.mark.parametrize(
    ("package", "message"),
    [
        ("Leaf-Net", "is not a valid package name"),
        ("practicum", "is the template's own name"),
        ("class", "is a Python keyword"),
        ("json", "would shadow the module 'json'"),
        ("torch", "would shadow the module 'torch'"),
    ],
)
def test_a_bad_package_name_is_one_line_and_changes_nothing(
    tmp_path: Path, package: str, message: str
):
    fork = tmp_path / "fork"
    shutil.copytree(ROOT, fork, ignore=FORK, symlinks=True)
    before = {name: (fork / name).read_bytes() for name in project_files(fork)}
    result = rename(fork, package)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rename_project: error:") and message in lines[0]
    assert {name: (fork / name).read_bytes() for name in project_files(fork)} == before


def test_a_checkout_with_uncommitted_work_is_refused(tmp_path: Path):
    fork = tmp_path / "fork"
    shutil.copytree(ROOT, fork, ignore=FORK, symlinks=True)
    git = {**os.environ, **GIT_IDENTITY}
    subprocess.run(["git", "init", "-q"], cwd=fork, check=True)
    subprocess.run(["git", "add", "-A"], cwd=fork, check=True)
    subprocess.run(["git", "commit", "-qm", "fork"], cwd=fork, check=True, env=git)
    (fork / "notes.txt").write_text("work in progress\n")
    result = rename(fork)
    assert result.returncode == 1 and "uncommitted changes" in result.stderr
    assert (fork / "src" / "practicum").is_dir() and (fork / "notes.txt").is_file()
    subprocess.run(["git", "add", "-A"], cwd=fork, check=True)
    subprocess.run(["git", "commit", "-qm", "notes"], cwd=fork, check=True, env=git)
    assert rename(fork).returncode == 0 and (fork / "src" / "leafnet").is_dir()


def test_a_folder_that_is_not_practicum_is_refused(tmp_path: Path):
    result = rename(tmp_path)
    assert result.returncode == 1 and "does not look like a copy of practicum" in result.stderr
