"""A run killed from outside resumes from last.ckpt and ends exactly where the whole run ends."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import pytest

from conftest import RESUMED_RUN, run_cli, start_training, wait_for


def _history(run_dir: Path) -> list[tuple[int, str]]:
    with open(run_dir / "metrics.csv", newline="") as file:
        return [(int(r["epoch"]), r["val/acc"]) for r in csv.DictReader(file) if r.get("val/acc")]


@pytest.mark.e2e
def test_sigkill_then_resume_ends_like_the_uninterrupted_run(tmp_path: Path, uninterrupted_run):
    from practicum.run.checkpoints import checkpoint_progress

    whole, killed = uninterrupted_run, tmp_path / "killed"
    process = start_training(*RESUMED_RUN, f"hydra.run.dir={killed}")
    last = killed / "checkpoints" / "last.ckpt"
    wait_for(
        lambda: (
            process.poll() is not None
            or (last.is_file() and (checkpoint_progress(str(last))[0] or 0) >= 2)
        ),
        what="the second epoch's last.ckpt",
    )
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    resumed_from = checkpoint_progress(str(last))[0]
    assert not (killed / "summary.json").exists()

    process = start_training(*RESUMED_RUN, f"hydra.run.dir={killed}", "ckpt_path=last")
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output[-3000:]

    expected = json.loads((whole / "summary.json").read_text())
    got = json.loads((killed / "summary.json").read_text())
    print(
        f"resumed from epoch {resumed_from}; whole: {expected['metrics']}; resumed: {got['metrics']}"
    )
    assert got["metrics"] == expected["metrics"]
    assert got["best_epoch"] == expected["best_epoch"]
    assert got["epochs_trained"] == expected["epochs_trained"] == 8
    # the CSV history continues: every epoch once, the same values as the uninterrupted run
    assert _history(killed) == _history(whole)
    assert [epoch for epoch, _ in _history(killed)] == list(range(8))


def test_resume_without_a_last_checkpoint_is_one_line(tmp_path: Path):
    from conftest import run_cli

    result = run_cli("train.py", "ckpt_path=last", f"hydra.run.dir={tmp_path / 'fresh'}")
    assert result.returncode == 2
    assert "ckpt_path=last but" in result.stderr and "last.ckpt does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_checkpoint_of_another_model_is_one_clear_line(tmp_path: Path):
    from conftest import run_cli, train

    _, summary, _ = train(
        tmp_path, ["model=mlp", "trainer.max_epochs=1", "diagnosis.baseline_model=null"]
    )
    result = run_cli(
        "train.py",
        "model=cnn",
        f"ckpt_path={summary['best_checkpoint']}",
        f"paths.log_dir={tmp_path}/logs",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(errors) == 1 and "does not fit model=cnn data=digits" in errors[0]
    assert "Traceback" not in result.stderr
    runs = tmp_path / "logs" / "train" / "runs"
    assert not runs.exists() or not list(runs.iterdir())  # no run folder left behind


def test_a_truncated_checkpoint_is_one_clear_line(tmp_path: Path):
    from conftest import run_cli, train

    _, summary, _ = train(tmp_path, ["trainer.max_epochs=1", "diagnosis.baseline_model=null"])
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(Path(summary["best_checkpoint"]).read_bytes()[:1000])
    for script in ("train.py", "eval.py"):
        result = run_cli(script, f"ckpt_path={broken}", f"paths.log_dir={tmp_path}/logs")
        assert result.returncode == 2, result.stderr[-2000:]
        assert "is not a readable checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_a_save_cut_off_midway_leaves_the_previous_checkpoint_whole(tmp_path: Path, monkeypatch):
    import torch

    from conftest import train

    _, summary, run_dir = train(tmp_path, ["trainer.max_epochs=1", "diagnosis.baseline_model=null"])
    from practicum.run.build import build_trainer
    from practicum.run.evaluate import load_run_config

    last = run_dir / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    cfg = load_run_config(str(last))
    trainer = build_trainer(cfg)

    class Killed(Exception):
        pass

    save = torch.save

    def write_half(obj, handle, *args, **kwargs):
        save(obj, handle, *args, **kwargs)
        handle.truncate(handle.tell() // 2)  # half the file reached the disk, then the process died
        raise Killed

    monkeypatch.setattr(torch, "save", write_half)
    checkpoint = torch.load(last, weights_only=True)
    with pytest.raises(Killed):
        trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, str(last))
    monkeypatch.undo()
    assert last.read_bytes() == before  # no truncated last.ckpt
    assert not [
        p
        for p in last.parent.iterdir()
        if p.name not in {last.name, Path(summary["best_checkpoint"]).name}
    ]


@pytest.mark.filterwarnings("ignore:.*isinstance.treespec, LeafSpec.* is deprecated")
@pytest.mark.parametrize("on_train_epoch_end", [True, False])
def test_last_checkpoint_is_the_last_epoch_even_when_the_best_is_older(
    tmp_path: Path, on_train_epoch_end: bool
):
    """The default callbacks: the best epoch's checkpoint, and last.ckpt after every epoch.

    (Lightning 2.6's `save_last=True` would write last.ckpt only with a new best; a run resumed
    from it would repeat every epoch since.)"""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    from practicum.run.build import build_callbacks
    from practicum.run.checkpoints import checkpoint_progress

    from conftest import compose_train

    scores = [0.5, 0.9, 0.7, 0.6]  # the best epoch is 1 of 0..3

    class Scripted(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).pow(2).mean()

        def validation_step(self, batch, batch_idx):
            self.layer(batch[0])

        def on_validation_epoch_end(self):
            self.log("val/acc", scores[self.current_epoch])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    flag = str(on_train_epoch_end).lower()
    cfg = compose_train(
        tmp_path,
        [
            "goal=accuracy",
            f"callbacks.model_checkpoint.save_on_train_epoch_end={flag}",
            f"callbacks.last_checkpoint.save_on_train_epoch_end={flag}",
        ],
    )
    callbacks = [c for c in build_callbacks(cfg) if isinstance(c, ModelCheckpoint)]
    assert [type(c) for c in callbacks] == [ModelCheckpoint, ModelCheckpoint]  # the stock class
    data = DataLoader(TensorDataset(torch.randn(16, 4)), batch_size=8)
    trainer = pl.Trainer(
        max_epochs=len(scores),
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Scripted(), train_dataloaders=data, val_dataloaders=data)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    assert sorted(p.name for p in folder.glob("*.ckpt")) == ["epoch_001.ckpt", "last.ckpt"]
    # the run's best checkpoint is the monitored one's, whatever last.ckpt holds
    assert trainer.checkpoint_callback.best_model_path == str(folder / "epoch_001.ckpt")
    # four epochs of two steps: the last checkpoint is after epoch 3, step 8
    assert checkpoint_progress(str(folder / "last.ckpt")) == (3, 8)
    assert checkpoint_progress(str(folder / "epoch_001.ckpt")) == (1, 4)


def test_an_explicit_run_directory_is_claimed_once(tmp_path: Path):
    """Two commands given the same hydra.run.dir at once: the marker is created exclusively, so
    the second is refused in one line; a refused command's claim leaves nothing behind."""
    from practicum.errors import UserError
    from practicum.run import resume

    run_dir = tmp_path / "mine"
    resume.plan(["model=mlp", f"hydra.run.dir={run_dir}"])
    assert (run_dir / resume.CLAIM).read_text().split()[1] == str(os.getpid())
    with pytest.raises(UserError, match="was just claimed by another run"):
        resume.plan(["model=mlp", f"hydra.run.dir={run_dir}"])
    resume.release_unused_claim()  # this command was refused: nothing of it stays
    assert not run_dir.exists()
    other = tmp_path / "other"
    result = run_cli("train.py", f"hydra.run.dir={other}", "optimizer.lr=fast")
    assert result.returncode == 2 and not other.exists()


@pytest.mark.slow
def test_two_runs_started_at_once_into_one_directory_never_mix(tmp_path: Path):
    """The race of an explicit hydra.run.dir: both commands start together; one trains, the
    other is refused in one line, and the folder holds the first run whole."""
    run_dir = tmp_path / "shared"
    args = ["model=mlp", "trainer.max_epochs=2", f"hydra.run.dir={run_dir}"]
    first, second = start_training(*args), start_training(*args)
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 2], outputs
    refused = outputs[[first.returncode, second.returncode].index(2)]
    errors = [line for line in refused.splitlines() if line.startswith("practicum: error:")]
    assert len(errors) == 1 and "hydra.run.dir=" in errors[0], refused
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_trained"] == 2
    assert (run_dir / "train.log").stat().st_size > 0


@pytest.mark.parametrize("name", ["a b", "x,y", "it's", 'q"uote', "plain"])
def test_a_printed_resume_command_reads_back_as_its_folder(tmp_path: Path, name: str):
    """A folder with a space, a comma (a sweep to Hydra) or a quote: the printed command, split
    by the shell and parsed by Hydra, names that folder."""
    import shlex

    from practicum.config.command_line import values
    from practicum.run.resume import resume_command

    run_dir = tmp_path / name / "run"
    words = shlex.split(resume_command(run_dir))
    assert words[:3] == ["python", "train.py", "ckpt_path=last"]
    assert values(words[3:])["hydra.run.dir"] == str(run_dir)
