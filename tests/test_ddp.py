"""DDP: `trainer=ddp_cpu` runs the multi-GPU code path as 2 CPU processes (gloo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli, run_process


@pytest.mark.e2e
def test_ddp_cpu_writes_one_run_with_metrics_of_the_whole_data(tmp_path: Path):
    # a process of its own: Lightning starts rank 1 by rerunning the command
    result = run_process(
        "train.py",
        "trainer=ddp_cpu",
        "trainer.max_epochs=3",
        "diagnosis.baseline_model=null",
        "callbacks.progress_bar=null",
        f"paths.log_dir={tmp_path}/logs",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout[-1500:])
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1, runs  # the second process writes into the same directory
    run_dir = runs[0]
    summaries = list(run_dir.rglob("summary.json"))
    assert summaries == [run_dir / "summary.json"]
    summary = json.loads(summaries[0].read_text())
    assert summary["status"] == "completed" and summary["epochs_trained"] == 3
    assert len(list((run_dir / "checkpoints").glob("*.ckpt"))) == 2  # best and last, once

    # the synced metrics equal a single process's evaluation on the whole test split
    result = run_cli(
        "eval.py", f"ckpt_path={summary['best_checkpoint']}", f"paths.log_dir={tmp_path}/logs"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (eval_dir,) = (tmp_path / "logs" / "eval" / "runs").iterdir()
    whole = json.loads((eval_dir / "eval.json").read_text())["metrics"]
    print("ddp:", {k: summary["metrics"][k] for k in whole}, "single process:", whole)
    for name in ("test/acc", "test/f1", "test/loss"):
        assert summary["metrics"][name] == pytest.approx(whole[name], abs=1e-6)
