"""Sweeps on a real SLURM cluster (`make test-slurm` brings up a single-node one with
scripts/slurm_cluster.sh and runs these): a grid, a random search whose workers pull trials and
lose one, a search that prunes, a cancelled job, a preempted trial that resumes, DDP with two
tasks, a request no node can run, and a launcher that dies.

Marked `slurm`: the main suite leaves them out (pyproject's addopts); `pytest -m slurm` runs them.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, wait_for

pytestmark = pytest.mark.slurm

ENV = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning", "COLUMNS": "120"}
# small, quick trials: one CPU and 1 GB each, so the two CPUs of the test node run two at once
QUICK = [
    "data=wine",
    "model=mlp",
    "diagnosis.baseline_model=null",
    "hydra/launcher=slurm",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=20",
]


def start_sweep(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "-m", *QUICK, *args, f"paths.log_dir={tmp_path}"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_sweep(tmp_path: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    process = start_sweep(tmp_path, *args)
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def submitted_jobs(process: subprocess.Popen, timeout: float = 120) -> list[str]:
    """The job ids the launcher prints once it has submitted the trials (or a search's workers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.match(
            r"Submitted \d+ (?:trials|workers for \d+ trials) as SLURM jobs (.+)", line
        )
        if match:
            return [job.strip() for job in match.group(1).split(",")]
    raise AssertionError("the launcher did not submit")


def job_state(job: str) -> str:
    out = subprocess.run(
        ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, check=False
    ).stdout
    return out.strip()


def sweep_dir(tmp_path: Path) -> Path:
    (folder,) = (tmp_path / "train" / "multiruns").iterdir()
    return folder


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def counts_line(folder: Path) -> str:
    return next(
        line for line in (folder / "summary.md").read_text().splitlines() if "trials:" in line
    )


def submission_scripts(folder: Path) -> list[str]:
    return [path.read_text() for path in sorted(folder.glob(".submitit/*/*_submission.sh"))]


def test_a_grid_runs_as_a_job_array_that_asks_for_no_gpu(tmp_path: Path):
    result = run_sweep(tmp_path, "trainer.max_epochs=3", "optimizer.lr=1e-3,3e-3")
    assert result.returncode == 0, result.stderr[-3000:]
    folder = sweep_dir(tmp_path)
    assert [summary(folder / job)["status"] for job in ("0", "1")] == ["completed"] * 2
    assert "2 trials: 2 completed" in counts_line(folder)
    (script,) = submission_scripts(folder)
    assert "#SBATCH --array=0-1" in script and "#SBATCH --cpus-per-task=1" in script
    assert "gpus" not in script and "gres" not in script  # a CPU trial asks for no GPU


def worker_of(folder: Path, number: int) -> str:
    """The SLURM job of the worker that pulled trial `number` from the sweep's study."""
    import optuna

    from practicum.run.study_trial import open_storage

    storage = open_storage(f"journal:{folder / 'study.journal'}")
    (name,) = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    trial = optuna.load_study(study_name=name, storage=storage).trials[number]
    return trial.user_attrs["slurm_job"]


def test_a_random_search_goes_on_after_a_cancelled_job(tmp_path: Path):
    process = start_sweep(
        tmp_path,
        "search=random",
        "search.n_trials=4",
        "hydra.launcher.array_parallelism=2",
        "trainer.max_epochs=300",
        "callbacks.early_stopping=null",
    )
    jobs = submitted_jobs(process)
    assert len(jobs) == 2  # as many workers as the array runs at once, pulling 4 trials
    # cancelled while it trains: after its first epoch, long before its 300th
    runs = tmp_path / "train" / "multiruns"
    wait_for(lambda: list(runs.glob("*/1/checkpoints/last.ckpt")), what="trial 1 to train")
    lost = worker_of(sweep_dir(tmp_path), 1)
    assert lost in jobs
    subprocess.run(["scancel", lost], check=True)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    assert f"trial 1 failed: its SLURM job {lost} ended CANCELLED" in err
    folder = sweep_dir(tmp_path)
    # scancel sends SIGTERM before SIGKILL: the trial, training, stops as an interrupted run with
    # the command that resumes it, and that record of its own is kept (the study counts it failed)
    statuses = {job: summary(folder / str(job))["status"] for job in range(4)}
    assert statuses == {0: "completed", 1: "interrupted", 2: "completed", 3: "completed"}
    assert summary(folder / "1")["resume"].startswith("python train.py ckpt_path=last")
    assert "4 trials: 3 completed, 1 interrupted" in counts_line(folder)
    with (folder / "summary.csv").open() as handle:
        rows = {row["job"]: row for row in csv.DictReader(handle)}
    assert rows["1"]["status"] == "interrupted" and rows["1"]["objective"] == ""
    # a worker takes the lost one's place while trials are left to ask; trials this short may all
    # be asked by the other worker before the launcher sees the loss (sacct's delay)
    replaced = "Submitted worker 2 as SLURM job" in out
    assert len(submission_scripts(folder)) == 1 + replaced
    if not replaced:
        assert worker_of(folder, 2) == worker_of(folder, 3) != lost
    import optuna

    storage = f"journal:{folder / 'study.journal'}"
    from practicum.run.study_trial import open_storage

    (name,) = [s.study_name for s in optuna.get_all_study_summaries(open_storage(storage))]
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    states = [t.state.name for t in sorted(study.trials, key=lambda t: t.number)]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]


def test_a_search_prunes_on_the_cluster(tmp_path: Path):
    """One worker pulls two grid points in turn: lr 0.03 trains its 6 epochs, lr 1e-6 is pruned
    by ASHA after its first (the grid's order is its seed's: 1 keeps lr 0.03 first)."""
    result = run_sweep(
        tmp_path,
        "search=grid",
        "search.seed=1",
        "search.pruner=asha",
        "optimizer.lr=choice(0.03,1e-6)",
        "optimizer.weight_decay=choice(0)",
        "trainer.max_epochs=6",
        "callbacks.early_stopping=null",
        "hydra.launcher.array_parallelism=1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Submitted 1 workers for 2 trials as SLURM jobs" in result.stdout
    folder = sweep_dir(tmp_path)
    kept, pruned = summary(folder / "0"), summary(folder / "1")
    assert kept["status"] == "completed" and kept["epochs_trained"] == 6
    assert pruned["status"] == "pruned" and pruned["epochs_trained"] == 1
    assert "test/acc" not in pruned["metrics"]
    assert "2 trials: 1 completed, 1 pruned" in counts_line(folder)
    assert "Budget: 7 trial-epochs" in (folder / "summary.md").read_text()


def test_two_workers_keep_both_slots_busy(tmp_path: Path):
    """Four equal trials pulled by two workers: the slots idle at most 10% of the sweep."""
    result = run_sweep(
        tmp_path,
        "search=grid",
        "optimizer.lr=choice(1e-3,2e-3,3e-3,4e-3)",
        "optimizer.weight_decay=choice(0)",
        "trainer.max_epochs=40",
        "callbacks.early_stopping=null",
        "hydra.launcher.array_parallelism=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    folder = sweep_dir(tmp_path)
    from practicum.search.sweep import collect_trials
    from practicum.search.sweep_study import schedule

    timing = schedule(folder, collect_trials(folder))
    assert timing.slots == 2 and timing.trial_epochs == 160
    assert timing.idle is not None and timing.idle <= 0.10, f"slots idle {timing.idle:.1%}"


def test_a_preempted_trial_resumes_from_its_last_checkpoint(tmp_path: Path):
    """Two identical deterministic trials; one is preempted (SLURM's USR2) after its first epoch,
    requeued, and must end exactly as the other, which ran through."""
    process = start_sweep(
        tmp_path,
        "trainer=deterministic",
        "trainer.max_epochs=150",
        "callbacks.early_stopping=null",
        "seed=7,7",
    )
    jobs = submitted_jobs(process)
    last = tmp_path / "train" / "multiruns"
    from practicum.run.checkpoints import checkpoint_progress

    def trained_on() -> bool:  # a later epoch's last.ckpt, long before the 150th
        saved = list(last.glob("*/0/checkpoints/last.ckpt"))
        return bool(saved) and (checkpoint_progress(str(saved[0]))[0] or 0) >= 1

    wait_for(trained_on, what="the second last.ckpt")
    subprocess.run(["scancel", "--signal=USR2", jobs[0]], check=True)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    folder = sweep_dir(tmp_path)
    logs = "".join(p.read_text() for p in folder.glob(f".submitit/{jobs[0]}/*_log.*"))
    assert "Requeued job" in logs and "resumes from" in logs, logs[-3000:]
    interrupted, through = folder / "0", folder / "1"
    assert summary(interrupted)["status"] == summary(through)["status"] == "completed"
    assert summary(interrupted)["metrics"] == summary(through)["metrics"]
    assert (interrupted / "metrics.csv").read_text() == (through / "metrics.csv").read_text()
    names = sorted(p.name for p in (interrupted / "checkpoints").iterdir())
    assert names == sorted(p.name for p in (through / "checkpoints").iterdir())
    assert "last-v1.ckpt" not in names
    a = torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    b = torch.load(through / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[key], b[key]) for key in b)


def test_the_requeue_signal_mid_epoch_saves_that_step_and_the_trial_ends_bit_exact(tmp_path):
    """SLURM's requeue signal (USR2, handled by submitit) in the middle of an epoch: the trial
    writes last.ckpt at that step, is requeued, resumes there and ends exactly as the same trial
    that ran through. The signal comes from the job itself at a chosen step (tests/interrupts.py),
    so that it lands inside an epoch, as it does on a cluster whose epochs last an hour."""
    env = {**ENV, "PRACTICUM_TRUST": "interrupts", "PYTHONPATH": str(ROOT / "tests")}
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "-m",
            *QUICK,
            "data.batch_size=8",  # 14 steps an epoch
            "trainer=deterministic",
            "trainer.max_epochs=6",
            "callbacks.early_stopping=null",
            "+callbacks.signal_at._target_=interrupts.SignalAt",
            "+callbacks.signal_at.signum=SIGUSR2",
            "+callbacks.signal_at.step=33,100000",  # the second trial is never signalled
            f"paths.log_dir={tmp_path}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    jobs = submitted_jobs(process)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    folder = sweep_dir(tmp_path)
    logs = "".join(p.read_text() for p in folder.glob(f".submitit/{jobs[0]}/*_log.*"))
    assert "Requeued job" in logs, logs[-3000:]
    resumed = re.search(r"trial 0 resumes from \S+ \((.+)\)", logs)
    assert resumed and "of epoch 3's" in resumed.group(1), logs[-3000:]
    interrupted, through = folder / "0", folder / "1"
    assert summary(interrupted)["status"] == summary(through)["status"] == "completed"
    assert summary(interrupted)["metrics"] == summary(through)["metrics"]
    assert (interrupted / "metrics.csv").read_text() == (through / "metrics.csv").read_text()
    for name in sorted(p.name for p in (through / "checkpoints").iterdir()):
        a = torch.load(interrupted / "checkpoints" / name, weights_only=True)["state_dict"]
        b = torch.load(through / "checkpoints" / name, weights_only=True)["state_dict"]
        assert all(torch.equal(a[key], b[key]) for key in b), name


def test_a_preempted_worker_resumes_its_trial_then_pulls_on(tmp_path: Path):
    """A search's worker preempted while its first trial trains: requeued, it resumes that trial
    from its last.ckpt, then pulls the second."""
    process = start_sweep(
        tmp_path,
        "search=grid",
        "optimizer.lr=choice(1e-3,2e-3)",
        "optimizer.weight_decay=choice(0)",
        "trainer=deterministic",
        "trainer.max_epochs=150",
        "callbacks.early_stopping=null",
        "hydra.launcher.array_parallelism=1",
    )
    (job,) = submitted_jobs(process)
    runs = tmp_path / "train" / "multiruns"
    from practicum.run.checkpoints import checkpoint_progress

    def trained_on() -> bool:
        saved = list(runs.glob("*/0/checkpoints/last.ckpt"))
        return bool(saved) and (checkpoint_progress(str(saved[0]))[0] or 0) >= 1

    wait_for(trained_on, what="trial 0's second last.ckpt")
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    folder = sweep_dir(tmp_path)
    logs = "".join(p.read_text() for p in folder.glob(f".submitit/{job}/*_log.*"))
    assert "Requeued job" in logs and "trial 0 resumes from" in logs, logs[-3000:]
    for trial in ("0", "1"):
        assert summary(folder / trial)["status"] == "completed"
        assert summary(folder / trial)["epochs_trained"] == 150
    assert "2 trials: 2 completed" in counts_line(folder)


def test_ddp_with_two_tasks_logs_per_rank_into_one_run_directory(tmp_path: Path):
    result = run_sweep(
        tmp_path, "trainer=ddp_cpu", "trainer.max_epochs=3", "seed=1", "verbose=true"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    folder = sweep_dir(tmp_path)
    (script,) = submission_scripts(folder)
    assert "#SBATCH --ntasks-per-node=2" in script
    run = folder / "0"
    assert summary(run)["status"] == "completed"
    assert "GLOBAL_RANK: 1" in (run / "train.rank1.log").read_text()
    assert "GLOBAL_RANK: 1" not in (run / "train.log").read_text()
    rank0, rank1 = (next(folder.glob(f".submitit/*/*_{rank}_log.out")) for rank in (0, 1))
    assert "optimizer" in rank0.read_text()  # verbose: rank zero prints the config tree
    assert "optimizer" not in rank1.read_text()


def test_a_request_no_node_can_run_is_one_line_before_submitting(tmp_path: Path):
    result = run_sweep(tmp_path, "seed=1,2", "hydra.launcher.cpus_per_task=64")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(errors) == 1 and "64 CPUs per node" in errors[0] and "at most 2 CPUs" in errors[0], (
        result.stderr
    )
    assert not list(tmp_path.glob("train/multiruns/*"))  # nothing submitted, nothing left


def test_after_the_launcher_dies_the_summary_is_rebuilt(tmp_path: Path):
    process = start_sweep(tmp_path, "trainer.max_epochs=3", "optimizer.lr=1e-3,3e-3")
    jobs = submitted_jobs(process)
    process.send_signal(signal.SIGKILL)  # the login shell went away
    process.communicate()
    wait_for(lambda: not any(job_state(job) for job in jobs), what="the jobs to end")
    folder = sweep_dir(tmp_path)
    assert not (folder / "summary.md").exists()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "practicum.search.summarize", str(folder)],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "2 trials: 2 completed" in rebuilt.stdout
    assert "2 trials: 2 completed" in counts_line(folder)
