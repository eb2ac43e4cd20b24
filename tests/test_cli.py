"""The command line as a user meets it: help, overrides, bad input, and eval.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, train

NO_TORCH_PROBE = """
import sys
sys.argv = ["train.py", *sys.argv[1:]]
from practicum.cli import train
try:
    train()
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "lightning", "torchmetrics", "sklearn") if m in sys.modules)
print("HEAVY:", ",".join(heavy))
"""


@pytest.mark.parametrize("flag", [["--help"], ["--cfg", "job"]])
def test_help_and_cfg_do_not_import_torch(flag: list[str]):
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH_PROBE, *flag],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("HEAVY:"), result.stdout[-300:]


def test_help_lists_every_group_with_its_options():
    result = run_cli("train.py", "--help")
    assert result.returncode == 0
    for line in (
        "model: cnn, inception, linear, mlp, resnet, vgg",
        "optimizer: adam, adamw, rmsprop, sgd",
        "data: breast_cancer, cifar10, cifar100, csv, digits, fashion_mnist, image_folder, mnist, wine",
    ):
        assert line in result.stdout
    for group in (
        "scheduler:",
        "trainer:",
        "logger:",
        "callbacks:",
        "goal:",
        "debug:",
        "experiment:",
    ):
        assert group in result.stdout


def test_cfg_job_shows_the_override():
    result = run_cli(
        "train.py", "--cfg", "job", "model=mlp", "optimizer=rmsprop", "optimizer.lr=3e-3"
    )
    assert result.returncode == 0
    assert "practicum.nets.mlp.MLP" in result.stdout and "torch.optim.RMSprop" in result.stdout
    assert "lr: 0.003" in result.stdout


BAD_INPUTS = [
    (
        ["model=nope"],
        "unknown model 'nope': choose one of cnn, inception, linear, mlp, resnet, vgg",
    ),
    (["optimizer.lr=-0.001"], "optimizer.lr=-0.001 is invalid: lr must be a number > 0"),
    (["model.net.dropout=1.0"], "model.net.dropout=1.0 is invalid: dropout must be in [0, 1)"),
    (["data.batch_size=0"], "data.batch_size=0 is invalid: batch_size must be a whole number >= 1"),
    (
        ["data=csv", "data.path=/no/such/table.csv", "model=mlp"],
        "data.path='/no/such/table.csv' does not exist",
    ),
    (["optimizer.lr=fast"], "optimizer.lr='fast' is invalid: lr must be a number > 0"),
    (["model.net._target_=os.system"], "model.net._target_='os.system' is not a trusted target"),
    (["data=csv"], "data.path must be set"),
    (["model=cnn", "data=wine"], "model=cnn needs image inputs"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str):
    result = run_cli("train.py", *args, f"paths.log_dir={tmp_path}/logs")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    runs = list((tmp_path / "logs").glob("*/runs/*"))
    assert runs == [], f"a refused run left a run directory behind: {runs}"


def test_cli_run_writes_the_run_directory(tmp_path: Path):
    result = run_cli(
        "train.py",
        "model=mlp",
        "optimizer=rmsprop",
        "optimizer.lr=3e-3",
        "scheduler=cosine",
        "trainer.max_epochs=3",
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    for name in (
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "metrics.csv",
        "summary.json",
        "checkpoints/last.ckpt",
    ):
        assert (run_dir / name).exists(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs_trained"] == 3
    assert "Best checkpoint" in result.stdout and "Goal val/acc >= 0.98" in result.stdout


def test_eval_reproduces_the_test_metrics(tmp_path: Path):
    _, summary, run_dir = train(tmp_path, ["trainer.max_epochs=4"])
    result = run_cli(
        "eval.py", f"ckpt_path={summary['best_checkpoint']}", f"paths.log_dir={tmp_path}/logs"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (eval_dir,) = (tmp_path / "logs" / "eval" / "runs").iterdir()
    evaluated = json.loads((eval_dir / "eval.json").read_text())["metrics"]
    for name in ("test/acc", "test/f1", "test/loss"):
        assert evaluated[name] == pytest.approx(summary["metrics"][name], abs=1e-6)


def test_eval_refuses_a_missing_checkpoint(tmp_path: Path):
    result = run_cli("eval.py", f"ckpt_path={tmp_path}/nope.ckpt", f"paths.log_dir={tmp_path}/logs")
    assert result.returncode == 2
    assert "ckpt_path=" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
