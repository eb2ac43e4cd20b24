"""Nothing a run wrote is lost: atomic writes, a full disk, a kill while saving, run folders that
never collide, runs that are never rewritten, and resumes that end as if never stopped."""

from __future__ import annotations

import csv
import errno
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import RESUMED_RUN, ROOT, run_cli, start_training, wait_for

QUICK = [
    "data=wine",
    "model=mlp",
    "trainer.max_epochs=4",
    "callbacks.progress_bar=null",
    "diagnosis.baseline_model=null",
]


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("practicum: error:")]


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file below `folder` with its modification time and content."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- atomic writes ------------------------------------------------------------------------------


class Stop(Exception):
    pass


@pytest.mark.parametrize("stage", ["write", "fsync", "replace"])
def test_a_write_that_fails_at_any_stage_leaves_the_old_file_whole(tmp_path, monkeypatch, stage):
    from practicum.platform import files

    target = tmp_path / "summary.json"
    files.write_json(target, {"status": "completed", "objective": 0.97})
    before = target.read_bytes()
    system_temp = set(Path(tempfile.gettempdir()).iterdir())

    if stage == "fsync":
        monkeypatch.setattr(
            os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full"))
        )
    elif stage == "replace":
        monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(Stop()))
    with pytest.raises((OSError, Stop)), files.open_atomic(target, "w") as handle:
        handle.write('{"status": "fail')  # half of the new content reaches the disk
        if stage == "write":
            raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.undo()

    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left
    assert set(Path(tempfile.gettempdir()).iterdir()) <= system_temp | {tmp_path}


SAVER = """
import sys, torch
from practicum.run.checkpoints import AtomicCheckpointIO
io = AtomicCheckpointIO()
state = {"weights": torch.randn(1_500_000), "epoch": 0}
for epoch in range(10**6):
    state["epoch"] = epoch
    io.save_checkpoint(state, sys.argv[1])
    print(epoch, flush=True)
"""


@pytest.mark.slow
def test_a_kill_while_saving_never_leaves_a_broken_checkpoint_nor_files_elsewhere(tmp_path):
    """A run directory on another filesystem than the system's temporary folder (as on clusters):
    whenever the saving process is killed, last.ckpt is a whole checkpoint."""
    import torch

    from practicum.platform.files import remove_stale_temps

    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    run_dir = Path(tempfile.mkdtemp(dir=base, prefix="practicum-test-"))
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    last = run_dir / "checkpoints" / "last.ckpt"
    env = {**os.environ, "TMPDIR": str(system_temp), "OMP_NUM_THREADS": "1"}
    rng = random.Random(0)
    try:
        epochs = []
        for _ in range(5):
            process = subprocess.Popen(
                [sys.executable, "-c", SAVER, str(last)], env=env, stdout=subprocess.PIPE, text=True
            )
            # one save done (there is a previous file to protect), then a few more: the kill
            # lands at once, in whichever save follows
            for _ in range(1 + rng.randrange(3)):
                process.stdout.readline()
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            epochs.append(torch.load(last, weights_only=True)["epoch"])  # whole, loadable
            outside = [p for p in system_temp.rglob("*") if p.is_file()]  # torch makes a folder
            assert not outside, "a temporary file outside the run directory"
        print(f"killed after saves {epochs}")
        stale = remove_stale_temps(run_dir)
        assert all(p.parent == last.parent for p in stale)
        assert [p.name for p in last.parent.iterdir()] == ["last.ckpt"]
    finally:
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)


# -- a full disk ----------------------------------------------------------------------------------


def _injected(from_write: int, pattern: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "fault_injection.py"),
            str(from_write),
            pattern,
            str(ROOT / "train.py"),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_full_disk_is_one_line_the_checkpoint_stays_whole_and_the_run_resumes(tmp_path):
    from practicum.run.checkpoints import checkpoint_progress

    run_dir = tmp_path / "run"
    # the 5th checkpoint write fails (2 files a epoch: the best epoch's and last.ckpt)
    result = _injected(5, ".ckpt", *QUICK, f"hydra.run.dir={run_dir}")
    assert result.returncode != 0
    lines = errors(result.stderr)
    assert len(lines) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    line = lines[0]
    last = run_dir / "checkpoints" / "last.ckpt"
    assert "no space left on the device writing" in line and str(run_dir) in line
    assert f"{last} (after " in line and "is intact" in line
    assert "resume with: python train.py ckpt_path=last hydra.run.dir=" in line
    epoch, _ = checkpoint_progress(str(last))  # whole and loadable
    assert epoch is not None and epoch >= 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert not [p for p in run_dir.rglob("*.tmp")]  # the failed write removed its temporary file

    # space freed: the command from the line, verbatim, finishes the run
    command = line.split("resume with: ", 1)[1]
    args = shlex.split(command)[2:]
    result = run_cli("train.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_trained"] == 4


@pytest.mark.slow
def test_a_disk_full_for_every_file_is_still_one_line(tmp_path):
    run_dir = tmp_path / "run"
    result = _injected(8, "", *QUICK, f"hydra.run.dir={run_dir}")
    assert result.returncode != 0
    assert len(errors(result.stderr)) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "no space left" in result.stderr
    assert not [p for p in run_dir.rglob("*.tmp")]
    summary = run_dir / "summary.json"
    assert not summary.exists() or json.loads(summary.read_text())["status"] == "failed"


# -- run folders --------------------------------------------------------------------------------


def test_folders_claimed_in_the_same_second_are_distinct(tmp_path):
    from practicum.platform.files import new_dir

    for _ in range(20):  # until two claims fall within one second
        first, second = new_dir(str(tmp_path / "runs")), new_dir(str(tmp_path / "runs"))
        if Path(first).name[:19] == Path(second).name[:19]:
            break
    assert first != second and Path(second).name == Path(first).name + "_2"
    assert Path(first).is_dir() and Path(second).is_dir()


@pytest.mark.slow
def test_two_runs_started_together_write_their_own_folders(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "train.py"), *QUICK, f"paths.log_dir={tmp_path}"]
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=300) for p in processes] == [0, 0]
    runs = sorted((tmp_path / "train" / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        with open(run / "metrics.csv", newline="") as file:
            epochs = [int(r["epoch"]) for r in csv.DictReader(file) if r.get("val/acc")]
        assert epochs == [0, 1, 2, 3]  # each run's own history, not both mixed in one file
        assert json.loads((run / "summary.json").read_text())["status"] == "completed"


# -- a finished run is never rewritten -----------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    logs = tmp_path_factory.mktemp("logs")
    result = run_cli("train.py", *QUICK, f"paths.log_dir={logs}")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (logs / "train" / "runs").iterdir()
    return run


@pytest.mark.parametrize(
    "args, says",
    [
        (["ckpt_path=last"], "is a finished run (completed after 4 epochs"),
        (["optimizer.lr=-1"], "already holds a run"),
        ([], "already holds a run"),
        (["ckpt_path=last", "optimizer.lr=-1"], "is a finished run"),
        (["ckpt_path=last", "trainer.max_epochs=40"], "is a finished run"),
    ],
)
def test_nothing_is_written_into_a_run_that_exists(finished_run, args, says):
    before = snapshot(finished_run)
    result = run_cli("train.py", *QUICK, f"hydra.run.dir={finished_run}", *args)
    assert result.returncode == 2
    assert len(errors(result.stderr)) == 1 and says in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert snapshot(finished_run) == before


def test_a_finished_run_is_not_picked_and_its_continue_command_trains_into_a_new_folder(
    finished_run,
):
    logs = finished_run.parents[2]
    before = snapshot(finished_run)
    result = run_cli("train.py", "ckpt_path=last", f"paths.log_dir={logs}")
    assert result.returncode == 2 and "no unfinished run under" in result.stderr
    assert "1 finished runs there are never resumed" in result.stderr

    result = run_cli("train.py", f"hydra.run.dir={finished_run}", "ckpt_path=last")
    command = errors(result.stderr)[0].split("into a new run directory, run ", 1)[1]
    args = shlex.split(command)[2:]
    assert f"ckpt_path={finished_run}/checkpoints/last.ckpt" in args
    result = run_cli("train.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted((logs / "train" / "runs").iterdir())
    assert len(runs) == 2 and snapshot(finished_run) == before
    new = json.loads((runs[1] / "summary.json").read_text())
    assert new["status"] == "completed" and new["epochs_trained"] > 0


def test_training_on_from_a_checkpoint_with_no_epochs_left_is_one_line(finished_run, tmp_path):
    last = finished_run / "checkpoints" / "last.ckpt"
    result = run_cli(
        "train.py", *QUICK, f"ckpt_path={last}", "trainer.max_epochs=3", f"paths.log_dir={tmp_path}"
    )
    assert result.returncode == 2
    assert "holds 4 trained epochs and trainer.max_epochs=3 trains no further" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "train" / "runs").exists() or not list(
        (tmp_path / "train" / "runs").iterdir()
    )


# -- resume: which run, with which overrides ---------------------------------------------------


def _fake_run(runs: Path, name: str, mtime: int, status: str | None, overrides: list[str]) -> Path:
    from practicum.methodology.run_summary import RunSummary

    run = runs / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    os.utime(run / "checkpoints" / "last.ckpt", (mtime, mtime))
    if status:
        RunSummary(status=status, run_dir=str(run), goal={}, epochs_trained=3).write()
    return run


def test_ckpt_path_last_resumes_the_newest_unfinished_run_with_its_own_overrides(tmp_path, capsys):
    from practicum.errors import UserError
    from practicum.run import resume

    runs = tmp_path / "logs" / "train" / "runs"
    _fake_run(runs, "a", 1000, None, ["model=mlp"])
    interrupted = _fake_run(runs, "b", 2000, "interrupted", ["model=mlp", "optimizer.lr=0.01"])
    _fake_run(runs, "c", 3000, "completed", ["model=cnn"])  # newest, but finished

    argv = resume.plan(["ckpt_path=last", "optimizer.lr=0.02"], cwd=tmp_path)
    # the run's own overrides first; one given again on the command line wins
    assert argv == [
        "model=mlp",
        "ckpt_path=last",
        "optimizer.lr=0.02",
        f"hydra.run.dir={interrupted}",
    ]
    assert f"resuming {interrupted} (interrupted)" in capsys.readouterr().err
    assert resume.plan(["seed=1"], cwd=tmp_path) == ["seed=1"]
    with pytest.raises(UserError, match="no unfinished run under"):
        resume.plan(["ckpt_path=last", "task_name=other"], cwd=tmp_path)
    with pytest.raises(UserError, match="is a finished run"):
        resume.plan(["ckpt_path=last", f"hydra.run.dir={runs / 'c'}"], cwd=tmp_path)


# -- Ctrl-C, then the printed command ------------------------------------------------------------


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.e2e
def test_ctrl_c_then_the_printed_command_ends_bit_exact_with_the_whole_run(
    tmp_path, uninterrupted_run
):
    import torch

    from practicum.run.checkpoints import checkpoint_progress, progress_text

    whole, stopped = uninterrupted_run, tmp_path / "stopped"
    process = start_training(*RESUMED_RUN, f"hydra.run.dir={stopped}")
    last = stopped / "checkpoints" / "last.ckpt"
    wait_for(
        lambda: (
            process.poll() is not None
            or (last.is_file() and (checkpoint_progress(str(last))[0] or 0) >= 2)
        ),
        what="the second epoch's last.ckpt",
    )
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)  # in the epoch after the one just saved
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output[-3000:]  # as a shell reports a Ctrl-C
    assert output.strip().splitlines()[-1] == "practicum: interrupted (Ctrl-C)"
    summary = json.loads((stopped / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    # saved at the step the signal came in (or, in validation, at the end of that epoch)
    epochs = checkpoint_progress(str(last))[0]
    assert 2 <= epochs < 8
    done = progress_text(str(last))
    assert done.startswith(("after 2 epochs", f"after {epochs} epochs")), done
    assert f"{last} ({done}) is intact. Resume with: " in output

    # the printed command, verbatim: the run's overrides come from its own .hydra/overrides.yaml
    command = output.split("Resume with: ", 1)[1].splitlines()[0].split()
    assert command[:2] == ["python", "train.py"]
    process = start_training(*command[2:])
    resumed_output = process.communicate(timeout=400)[0]
    assert process.returncode == 0, resumed_output[-3000:]
    assert f"resuming {stopped} (interrupted)" in resumed_output
    assert f"Training on from {last} ({done}) in its own directory" in resumed_output

    expected = json.loads((whole / "summary.json").read_text())
    got = json.loads((stopped / "summary.json").read_text())
    assert got["metrics"] == expected["metrics"]
    assert got["best_epoch"] == expected["best_epoch"] and got["epochs_trained"] == 8
    drop = {"step"}  # identical too, compared with everything else
    assert [r for r in _rows(stopped)] == [r for r in _rows(whole)], drop
    for name in ("last.ckpt", Path(expected["best_checkpoint"]).name):
        a = torch.load(whole / "checkpoints" / name, weights_only=True)["state_dict"]
        b = torch.load(stopped / "checkpoints" / name, weights_only=True)["state_dict"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert sorted(p.name for p in (stopped / "checkpoints").iterdir()) == sorted(
        p.name for p in (whole / "checkpoints").iterdir()
    )


# -- trust ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["eval.py", "predict.py"])
def test_a_checkpoint_cannot_extend_trust(finished_run, tmp_path, script):
    """A checkpoint's stored config goes through the checks a command line's does: a net that is
    really `extract_archive` (or an alias of `torch.save`) is refused before anything is built."""
    import tarfile

    import torch

    archive = tmp_path / "payload.tar"
    (tmp_path / "payload.txt").write_text("planted")
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "payload.txt", arcname="payload.txt")
    planted = tmp_path / "planted"
    inputs = tmp_path / "rows.csv"
    inputs.write_text(",".join(["1.0"] * 13) + "\n")
    checkpoint = torch.load(finished_run / "checkpoints" / "last.ckpt", weights_only=True)
    for target in ("torchvision.datasets.utils.extract_archive", "torch.nn.functional.torch.save"):
        checkpoint["practicum_config"]["model"]["net"] = {
            "_target_": target,
            "from_path": str(archive),
            "to_path": str(planted),
        }
        evil = tmp_path / "evil.ckpt"
        torch.save(checkpoint, evil)
        extra = (
            [f"input={inputs}", f"output={tmp_path / 'out.csv'}"] if script == "predict.py" else []
        )
        result = run_cli(script, f"ckpt_path={evil}", f"paths.log_dir={tmp_path}/logs", *extra)
        assert result.returncode == 2, result.stderr[-2000:]
        (line,) = errors(result.stderr)
        assert f"the config stored in ckpt_path={evil} is refused: model.net._target_=" in line
        assert "is not a trusted target" in line and "Traceback" not in result.stderr
        assert not planted.exists() and not (tmp_path / "out.csv").exists()
        assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").rglob("*.*"))


def test_a_run_killed_while_it_was_evaluated_resumes_without_training_more(tmp_path):
    """Killed after training stopped early, before summary.json: the resume evaluates the same
    best checkpoint and does not train on past the epoch where the run had stopped."""
    run_dir = tmp_path / "run"
    args = [
        "data=wine",
        "model=mlp",
        "trainer=deterministic",
        "goal.stop_when_met=true",
        "goal.target=0.9",
        "trainer.max_epochs=30",
        "callbacks.progress_bar=null",
        "diagnosis.baseline_model=null",
    ]
    result = run_cli("train.py", *args, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    whole = json.loads((run_dir / "summary.json").read_text())
    assert whole["epochs_trained"] < 30  # it stopped early
    for name in ("summary.json", "report.md"):  # what a kill during the evaluation leaves out
        (run_dir / name).unlink()

    result = run_cli("train.py", "ckpt_path=last", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["status"] == "completed"
    assert resumed["metrics"] == whole["metrics"]
    assert resumed["epochs_trained"] == whole["epochs_trained"]
    assert resumed["best_checkpoint"] == whole["best_checkpoint"]


@pytest.mark.parametrize(
    ("phase", "signal_name", "code"),
    [("linear_baseline", "SIGTERM", 143), ("report_run", "SIGINT", 130)],
)
def test_a_signal_after_training_ends_the_run_as_interrupted_in_one_line(
    tmp_path: Path, monkeypatch, phase: str, signal_name: str, code: int
):
    """SIGTERM or Ctrl-C while the baseline trains or the report is written (after the fit):
    the run is `interrupted` with its resume command, one line says so, no traceback."""
    from practicum.cli import entry
    from practicum.run import one_run

    def stop(*args, **kwargs):
        if signal_name == "SIGTERM":
            os.kill(os.getpid(), signal.SIGTERM)
        raise KeyboardInterrupt

    monkeypatch.setattr(one_run, phase, stop)
    result = run_cli("train.py", "model=mlp", "trainer.max_epochs=1", f"paths.log_dir={tmp_path}")
    assert result.returncode == code, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    how = "SIGTERM" if code == 143 else "Ctrl-C"
    assert result.stderr.strip().splitlines()[-1] == f"practicum: interrupted ({how})"
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["error"] == (
        "interrupted by SIGTERM" if code == 143 else "interrupted by SIGINT (Ctrl-C)"
    )
    assert summary["resume"] == f"python train.py ckpt_path=last hydra.run.dir={run_dir}"
    assert entry.Terminated.__mro__[1] is KeyboardInterrupt


@pytest.mark.parametrize("step", [0, 5])
def test_a_mistake_found_while_training_is_one_line_and_the_run_says_it_failed(tmp_path, step):
    """Found once training began (at its first step or later), the mistake leaves the folder with
    what was trained and a summary that says the run failed, and why; with the file fixed, the
    printed command goes on from the last checkpoint."""
    run_dir, broken = tmp_path / "run", tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    trust = {"PRACTICUM_TRUST": "interrupts"}
    result = run_cli(
        "train.py",
        *QUICK,
        f"hydra.run.dir={run_dir}",
        "+callbacks.mistake_at._target_=interrupts.MistakeAt",
        f"+callbacks.mistake_at.step={step}",
        f"+callbacks.mistake_at.broken={broken}",
        env=trust,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = errors(result.stderr)
    assert len(lines) == 1 and "broken.png is an unreadable file: replace or remove it" in lines[0]
    assert "Traceback" not in result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "broken.png is an unreadable file" in summary["error"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() == (step == 5)
    if step == 5:
        assert summary["resume"] == f"python train.py ckpt_path=last hydra.run.dir={run_dir}"
        broken.unlink()  # the user fixes the file
        resumed = run_cli("train.py", *shlex.split(summary["resume"])[2:], env=trust)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["epochs_trained"] == 4
