"""Sweeps survive their trials: a trial killed mid-training (SIGKILL, as the out-of-memory killer
sends) is one failed trial and the rest of the sweep runs; a sweep in which every trial failed
ends with one line and a non-zero exit; `practicum-summarize` writes the summary files again."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli, wait_for

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="finds the trial's process through /proc"
)

QUICK = [
    "data=wine",
    "model=linear",
    "diagnosis.baseline_model=null",
    "callbacks.progress_bar=null",
    # every trial runs its full length, so the one to kill is still training when it is found
    "callbacks.early_stopping=null",
]
KILLED = "1"
ENV = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning", "COLUMNS": "120"}


def start_sweep(log_dir: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, str(ROOT / "train.py"), "-m", *QUICK, *args]
    return subprocess.Popen(
        [*command, "hydra/launcher=local_parallel", f"paths.log_dir={log_dir}"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def descendants(pid: int) -> list[int]:
    """The processes below `pid`: its children, theirs, ... (a trial's process may be forked by a
    fork server the sweep started)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        found += below
        frontier = below
    return found


def holds_open(pid: int, path: Path) -> bool:
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def kill_mid_training(sweep: subprocess.Popen, log_dir: Path, job: str, sibling: str | None):
    """SIGKILL the process of trial `job` once it has trained an epoch (its last.ckpt exists) and,
    when `sibling` is given, while that trial is still running (no summary.json yet). The trial's
    process is the one below the sweep's that holds the trial's log file open."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and sweep.poll() is None:
        for checkpoint in log_dir.glob(f"train/multiruns/*/{job}/checkpoints/last.ckpt"):
            run_dir = checkpoint.parents[1]
            if sibling is not None and (run_dir.parent / sibling / "summary.json").exists():
                pytest.fail(f"trial {sibling} finished before trial {job} could be killed")
            for pid in descendants(sweep.pid):
                if holds_open(pid, run_dir / "train.log"):
                    os.kill(pid, signal.SIGKILL)
                    return
        time.sleep(0.05)
    sweep.kill()
    pytest.fail(f"trial {job} never trained an epoch:\n{sweep.communicate()[1][-3000:]}")


def finish(sweep: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = sweep.communicate(timeout=600)
    return subprocess.CompletedProcess(sweep.args, sweep.returncode, stdout, stderr)


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {row["job"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def killed_grid(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """A 3-trial grid, 2 at a time; trial 1 (1000 epochs) is killed while trial 0 (60) runs."""
    log_dir = tmp_path_factory.mktemp("killed_grid")
    sweep = start_sweep(log_dir, "trainer.max_epochs=60,1000,5")
    kill_mid_training(sweep, log_dir, KILLED, sibling="0")
    result = finish(sweep)
    (sweep_dir,) = (log_dir / "train" / "multiruns").iterdir()
    return result, sweep_dir


@pytest.mark.e2e
def test_a_killed_trial_is_one_failed_trial_and_the_sweep_goes_on(killed_grid):
    result, sweep_dir = killed_grid
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TerminatedWorkerError" not in result.stderr and "Traceback" not in result.stderr
    assert (
        f"practicum: error: trial {KILLED} failed: its process was killed by signal 9 (SIGKILL"
        in (result.stderr)
    )

    killed = json.loads((sweep_dir / KILLED / "summary.json").read_text())
    assert killed["status"] == "failed" and killed["objective"] is None
    assert killed["error"].startswith("trial lost: its process was killed by signal 9 (SIGKILL")
    assert killed["goal"] == {"metric": "val/acc", "mode": "max", "target": 0.98}
    assert (sweep_dir / KILLED / "checkpoints" / "last.ckpt").is_file(), "killed mid-training"

    # the sibling that was running when its neighbour died, and the trial started after, finished
    for job, epochs in (("0", 60), ("2", 5)):
        summary = json.loads((sweep_dir / job / "summary.json").read_text())
        assert summary["status"] == "completed", summary
        assert summary["epochs_trained"] == epochs and 0 < summary["objective"] <= 1

    rows = read_csv(sweep_dir / "summary.csv")
    assert [rows[job]["status"] for job in "012"] == ["completed", "failed", "completed"]
    assert rows[KILLED]["objective"] == "" and "signal 9" in rows[KILLED]["error"]
    assert [rows[job]["trainer.max_epochs"] for job in "012"] == ["60", "1000", "5"]
    markdown = (sweep_dir / "summary.md").read_text()
    assert "3 trials: 2 completed, 1 failed; " in markdown


@pytest.mark.slow
def test_optuna_records_a_killed_trial_as_failed_and_proposes_the_next(tmp_path: Path):
    optuna = pytest.importorskip("optuna")
    storage = f"sqlite:///{tmp_path}/study.db"
    sweep = start_sweep(
        tmp_path,
        "search=random",
        "search.n_trials=3",
        f"search.storage={storage}",
        "search.study_name=killed",
        "trainer.max_epochs=60",
    )
    kill_mid_training(sweep, tmp_path, KILLED, sibling=None)
    result = finish(sweep)
    assert result.returncode == 0, result.stderr[-3000:]

    study = optuna.load_study(study_name="killed", storage=storage)
    states = [trial.state.name for trial in sorted(study.trials, key=lambda t: t.number)]
    assert states == ["COMPLETE", "FAIL", "COMPLETE"], "the third trial was still proposed and run"
    (sweep_dir,) = (tmp_path / "train" / "multiruns").iterdir()
    rows = read_csv(sweep_dir / "summary.csv")
    assert [rows[job]["status"] for job in "012"] == ["completed", "failed", "completed"]
    # the values Optuna proposed to the lost trial are in its row
    lost = next(t for t in study.trials if t.state.name == "FAIL")
    assert float(rows[KILLED]["optimizer.lr"]) == pytest.approx(lost.params["optimizer.lr"])


@pytest.mark.parametrize(
    "args",
    [
        # Hydra's basic sweeper: a 9x9 kernel without padding does not fit the 8x8 digits
        ["model.net.kernel_size=9", "model.net.padding=0", "optimizer.lr=1e-3,1e-2"],
        # Optuna, whose sweep raises of its own when no trial completed
        ["search=random", "search.n_trials=2", "model=linear", "data.batch_size=0"],
    ],
    ids=["basic", "optuna"],
)
def test_a_sweep_in_which_every_trial_failed_exits_non_zero(tmp_path: Path, args: list[str]):
    result = run_cli(
        "train.py",
        "-m",
        *args,
        "trainer.max_epochs=1",
        "diagnosis.baseline_model=null",
        f"paths.log_dir={tmp_path}",
    )

    (sweep_dir,) = (tmp_path / "train" / "multiruns").iterdir()
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"practicum: error: all 2 trials of the sweep failed: see {sweep_dir}/summary.md"
    assert "Traceback" not in result.stderr
    markdown = (sweep_dir / "summary.md").read_text()
    assert "2 trials: 0 completed, 2 refused; " in markdown
    assert "No trial completed with a finite objective." in markdown


def summarize(*args: str, module: bool = False) -> subprocess.CompletedProcess:
    entry = [sys.executable, "-m", "practicum.search.summarize"] if module else [SUMMARIZE]
    return subprocess.run([*entry, *args], cwd=ROOT, env=ENV, capture_output=True, text=True)


SUMMARIZE = str(Path(sys.executable).parent / "practicum-summarize")
FILES = ("summary.csv", "summary.md", "search.png")


@pytest.mark.parametrize("module", [False, True], ids=["script", "module"])
def test_summarize_writes_the_summary_files_again(killed_grid, module: bool):
    _, sweep_dir = killed_grid
    written = {name: (sweep_dir / name).read_bytes() for name in FILES}
    for name in FILES:
        (sweep_dir / name).unlink()

    result = summarize(str(sweep_dir), module=module)

    assert result.returncode == 0, result.stderr
    for name in ("summary.csv", "summary.md"):
        assert (sweep_dir / name).read_bytes() == written[name], f"{name} differs from the sweep's"
    assert (sweep_dir / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = read_csv(sweep_dir / "summary.csv")
    best = max((r for r in rows.values() if r["objective"]), key=lambda r: float(r["objective"]))
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        f"Sweep summary: {sweep_dir / 'summary.md'}",
        f"Table: {sweep_dir / 'summary.csv'}",
        f"Plot: {sweep_dir / 'search.png'}",
        "3 trials: 2 completed, 1 failed",
    ]
    overrides = yaml.safe_load((sweep_dir / best["job"] / ".hydra/overrides.yaml").read_text())
    assert lines[4].startswith(f"Best trial: job {best['job']}, objective ")
    command = shlex.join(["python", "train.py", *overrides])
    assert lines[4].endswith(f"run dir {sweep_dir / best['job']}: {command}")


def test_summarize_refuses_what_is_not_a_sweep_in_one_line(tmp_path: Path):
    missing = summarize(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    empty = summarize(str(tmp_path / "empty"))

    for result, says in ((missing, "no sweep directory"), (empty, "holds no trials")):
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("practicum: error: ") and says in line
        assert result.stdout == ""
    assert list((tmp_path / "empty").iterdir()) == [], (
        "nothing written into a folder with no trials"
    )


@pytest.mark.slow
def test_ctrl_c_on_a_parallel_sweep_is_one_line_and_keeps_each_trials_record(tmp_path: Path):
    """Ctrl-C reaches the whole process group: the sweep says in one line how to resume the
    interrupted trials and summarize; each running trial keeps its own `interrupted` summary
    with its resume command (never rewritten as a failed trial)."""
    import signal

    log_dir = tmp_path / "logs"
    command = [sys.executable, str(ROOT / "train.py"), "-m", *QUICK, "trainer.max_epochs=400"]
    command += ["optimizer.lr=1e-3,3e-3", "hydra/launcher=local_parallel"]
    sweep = subprocess.Popen(
        [*command, f"paths.log_dir={log_dir}"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: (
                sweep.poll() is not None
                or len(list(log_dir.glob("*/multiruns/*/*/checkpoints/last.ckpt"))) >= 2
            ),
            what="both trials' first checkpoint",
        )
        assert sweep.poll() is None, "the sweep ended before its trials got going"
        os.killpg(sweep.pid, signal.SIGINT)
        _, stderr = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("practicum: interrupted")]
    assert len(lines) == 1 and "practicum-summarize" in lines[0], stderr[-3000:]
    summaries = [json.loads(p.read_text()) for p in log_dir.glob("*/multiruns/*/*/summary.json")]
    assert len(summaries) == 2
    for summary in summaries:
        assert summary["status"] == "interrupted", summary
        assert summary["resume"].startswith("python train.py ckpt_path=last hydra.run.dir=")
