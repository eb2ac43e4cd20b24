"""Developer tooling: the pre-commit hooks pass on the repository; the CI workflows are valid."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT


def test_workflows_are_valid_and_run_the_documented_commands():
    workflows = {
        p.name: yaml.safe_load(p.read_text())
        for p in (ROOT / ".github" / "workflows").glob("*.yml")
    }
    assert set(workflows) >= {"tests.yml", "lint.yml"}
    for name, flow in workflows.items():
        assert flow["jobs"], name
        for job in flow["jobs"].values():
            assert job["runs-on"] and job["steps"], name
    job = workflows["tests.yml"]["jobs"]["test"]
    commands = [s.get("run", "") for s in job["steps"]]
    # both ends of what pyproject.toml allows: the newest releases (both layers) and the lower bounds
    targets = {entry["target"] for entry in job["strategy"]["matrix"]["include"]}
    assert targets == {"test", "test-slow", "test-oldest"}
    assert "make ${{ matrix.target }}" in commands
    makefile = (ROOT / "Makefile").read_text()
    assert all(re.search(rf"^{target}:", makefile, re.M) for target in targets)
    assert any("download.pytorch.org/whl/cpu" in c for c in commands)  # CPU torch on runners


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git checkout")
def test_pre_commit_hooks_pass_on_the_repository():
    pre_commit = Path(sys.executable).parent / "pre-commit"
    if not pre_commit.exists():
        pre_commit = Path(shutil.which("pre-commit") or "pre-commit")
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    ids = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff-check", "ruff-format"} <= ids
    result = subprocess.run(
        [str(pre_commit), "run", "--all-files", "--show-diff-on-failure"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "ruff check" in result.stdout and "Passed" in result.stdout


def _pytest_command(target: str) -> list[str]:
    """The pytest command line `make <target>` runs, from `make -n`."""
    lines = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout.splitlines()
    (line,) = [line for line in lines if " -m pytest " in line]
    return shlex.split(line)[shlex.split(line).index("pytest") + 1 :]


def _collected(target: str) -> list[str]:
    args = [a for a in _pytest_command(target) if a not in ("auto",)]
    if "-n" in args:  # collecting needs no workers
        del args[args.index("-n")]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return [line for line in result.stdout.splitlines() if "::" in line]


def _selected(expression: str, markers: set[str]) -> bool:
    """Whether pytest's `-m expression` selects a test carrying `markers`."""
    from _pytest.mark.expression import Expression

    return Expression.compile(expression).evaluate(lambda name, **_: name in markers)


def test_no_target_but_test_slurm_selects_the_slurm_tests():
    """The `-m` expression of every pytest command in the Makefile, against the markers."""
    for target in ("test", "test-slow", "test-oldest", "coverage"):
        for line in subprocess.run(
            ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60
        ).stdout.splitlines():
            if " -m pytest " not in line:
                continue
            args = shlex.split(line)
            expression = args[args.index("-m", args.index("pytest")) + 1]
            assert not _selected(expression, {"slurm"}), (target, line)
            assert not _selected(expression, {"slurm", "e2e"}), (target, line)
    fast = _pytest_command("test")
    expression = fast[fast.index("-m") + 1]
    assert not _selected(expression, {"slow"}) and _selected(expression, {"e2e"})
    assert _selected(expression, set()) and _selected(expression, {"smoke"})


@pytest.mark.slow
def test_make_test_collects_the_fast_layer_and_no_slurm_test():
    """What `make test` really collects: no SLURM test, nothing slow, about 15 real processes."""
    fast = _collected("test")
    assert fast and not any(item.startswith("tests/test_slurm.py") for item in fast)
    marked = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "e2e",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout.splitlines()
    e2e = [line for line in marked if "::" in line]
    assert set(e2e) <= set(fast) and len(e2e) <= 16, e2e
