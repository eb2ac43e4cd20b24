"""Checkpoints in the middle of an epoch (run/step_checkpoints.py, data/position.py): a run stopped
between two steps and resumed ends bit-exact with the run that was never stopped: metrics.csv rows,
summary metrics, and every checkpoint's weights."""

from __future__ import annotations

import csv
import json
import random
import signal
from pathlib import Path

import pytest
import torch

from practicum.data.batches import TensorBatches
from practicum.data.position import SeededIndex, ShuffledPasses, seeded
from practicum.run.step_checkpoints import StepCheckpoint
from practicum.tasks.base import MID_EPOCH_KEY
from test_image_data import write_image_folder

from conftest import run_cli, start_training, wait_for

TRUST = {"PRACTICUM_TRUST": "interrupts"}  # tests/interrupts.py: a signal at a chosen step
QUIET = ["trainer=deterministic", "callbacks.progress_bar=null", "diagnosis.baseline_model=null"]
# digits, 40 steps an epoch, dropout: the random states matter
IN_MEMORY = [*QUIET, "trainer.max_epochs=3", "model=mlp", "model.net.dropout=0.2"]
IN_MEMORY += ["data.batch_size=32", "diagnosis.audit=false"]


def image_run(root: Path) -> list[str]:
    """Image files, loaded by two worker processes, with random augmentation and erasing."""
    return [
        *QUIET,
        "trainer.max_epochs=3",
        "data=image_folder",
        f"data.root={root}",
        "data.num_workers=2",
        "data.batch_size=4",
        "data.augment=strong",
        "data.image_size=16",
        "data.input_shape=auto",
        "model=cnn",
        "diagnosis.audit=false",
    ]


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def assert_same_run(whole: Path, stopped: Path) -> None:
    assert rows(stopped) == rows(whole)
    expected = json.loads((whole / "summary.json").read_text())
    got = json.loads((stopped / "summary.json").read_text())
    assert got["status"] == expected["status"] and got["metrics"] == expected["metrics"]
    names = sorted(p.name for p in (whole / "checkpoints").iterdir())
    assert sorted(p.name for p in (stopped / "checkpoints").iterdir()) == names
    for name in names:
        a = torch.load(whole / "checkpoints" / name, weights_only=True)["state_dict"]
        b = torch.load(stopped / "checkpoints" / name, weights_only=True)["state_dict"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def stop_and_resume(base: list[str], run: Path, step: int, signum: str) -> str:
    """The run signalled while training step `step`, then resumed by its printed command."""
    stopped = run_cli(
        "train.py",
        *base,
        f"hydra.run.dir={run}",
        "+callbacks.signal_at._target_=interrupts.SignalAt",
        f"+callbacks.signal_at.step={step}",
        f"+callbacks.signal_at.signum={signum}",
        env=TRUST,
    )
    assert stopped.returncode == {"SIGINT": 130, "SIGTERM": 143}[signum], stopped.stderr[-2000:]
    how = "Ctrl-C" if signum == "SIGINT" else "SIGTERM"
    assert stopped.stderr.strip().splitlines()[-1] == f"practicum: interrupted ({how})"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["error"].startswith(f"interrupted by {signum}"), summary["error"]
    last = run / "checkpoints" / "last.ckpt"
    position = torch.load(last, weights_only=True)[MID_EPOCH_KEY]
    assert "Resume with: python train.py ckpt_path=last" in stopped.stdout
    command = stopped.stdout.split("Resume with: ", 1)[1].split()
    resumed = run_cli(*command[1:], env=TRUST)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    return f"{position}\n{stopped.stdout}"


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signal_mid_epoch_saves_that_step_and_the_resumed_run_is_bit_exact(
    tmp_path, trained_runs, signum
):
    whole = trained_runs.get(IN_MEMORY)[1]
    step = random.Random(signum).randrange(41, 79)  # inside the second epoch (40 steps each)
    said = stop_and_resume(IN_MEMORY, tmp_path / "stopped", step, signum)
    # saved at the end of the step the signal came in, not at the epoch's end
    done = step - 40 + 1
    assert f"'batches_done': {done}" in said and "'epoch': 1" in said, said
    assert f"(after 1 epoch and {done} of epoch 2's 40 batches) is intact" in said
    assert_same_run(whole, tmp_path / "stopped")


def test_image_files_with_two_workers_resume_mid_epoch_bit_exact(tmp_path):
    root = write_image_folder(tmp_path / "images", per_class=24)
    base = image_run(root)
    whole = tmp_path / "whole"
    assert run_cli("train.py", *base, f"hydra.run.dir={whole}").returncode == 0
    steps = json.loads((whole / "summary.json").read_text())
    per_epoch = int(rows(whole)[-1]["step"]) // steps["epochs_trained"]
    step = random.Random(0).randrange(per_epoch + 1, 2 * per_epoch - 1)
    stop_and_resume(base, tmp_path / "stopped", step, "SIGINT")
    assert_same_run(whole, tmp_path / "stopped")


def test_a_signal_in_an_epochs_last_step_stops_after_that_epochs_checkpoint(tmp_path, trained_runs):
    """No checkpoint is saved on an epoch's last step (Lightning would resume past the epoch's
    end without its validation): the run stops when the next epoch starts."""
    whole = trained_runs.get(IN_MEMORY)[1]
    stopped = tmp_path / "stopped"
    result = run_cli(
        "train.py",
        *IN_MEMORY,
        f"hydra.run.dir={stopped}",
        "+callbacks.signal_at._target_=interrupts.SignalAt",
        "+callbacks.signal_at.step=39",
        env=TRUST,
    )
    assert result.returncode != 0
    checkpoint = torch.load(stopped / "checkpoints" / "last.ckpt", weights_only=True)
    assert MID_EPOCH_KEY not in checkpoint and checkpoint["epoch"] == 0
    assert "(after 1 epoch) is intact" in result.stdout
    command = result.stdout.split("Resume with: ", 1)[1].split()
    assert run_cli(*command[1:], env=TRUST).returncode == 0
    assert_same_run(whole, stopped)


@pytest.mark.slow
def test_sigkill_loses_at_most_the_interval_of_time_based_saves(tmp_path):
    """`every_s` below a second: a SIGKILL mid-epoch leaves a mid-epoch last.ckpt at most that
    old, and the resumed run ends bit-exact."""
    base = [*IN_MEMORY, "data.batch_size=8", "trainer.max_epochs=3"]
    whole = tmp_path / "whole"  # every run a process of one thread: the same sums
    process = start_training(*base, f"hydra.run.dir={whole}")
    assert process.wait(timeout=600) == 0
    run = tmp_path / "killed"
    process = start_training(*base, f"hydra.run.dir={run}", "callbacks.step_checkpoint.every_s=0.2")
    last = run / "checkpoints" / "last.ckpt"

    def saved_mid_epoch() -> bool:
        if process.poll() is not None or not last.is_file():
            return process.poll() is not None
        try:
            return MID_EPOCH_KEY in torch.load(last, weights_only=True)
        except Exception:  # replaced while read
            return False

    wait_for(saved_mid_epoch, what="a mid-epoch last.ckpt")
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    resumed = start_training("ckpt_path=last", f"hydra.run.dir={run}")
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output[-2000:]
    assert "and " in output.split("Training on from", 1)[1].split("\n")[0]  # mid-epoch
    assert_same_run(whole, run)


# -- the parts --------------------------------------------------------------------------------


def test_the_shuffled_batches_resume_at_their_batch_in_the_same_order():
    x, y = torch.arange(50.0).unsqueeze(1), torch.arange(50)
    batches = TensorBatches((x, y), 4, shuffle=True, seed=3)
    first = [b[1] for b in batches]
    iterator = iter(batches)
    second = [next(iterator)[1] for _ in range(5)]
    state = batches.position.state(5)  # saved after 5 batches of the second pass
    second += [b[1] for b in iterator]
    third = [b[1] for b in batches]
    again = TensorBatches((x, y), 4, shuffle=True, seed=3)
    again.position.restore(state)
    rest = [b[1] for b in again]
    assert [b.tolist() for b in rest] == [b.tolist() for b in second[5:]]
    assert [b[1].tolist() for b in again] == [b.tolist() for b in third]
    assert first[0].tolist() != second[0].tolist()  # a new order each pass


class Noisy(torch.utils.data.Dataset):
    """Random augmentation inside `seeded`: what the image datasets do."""

    def __len__(self) -> int:
        return 24

    def __getitem__(self, index):
        with seeded(index):
            return torch.rand(3) + int(index)


@pytest.mark.parametrize("workers", [0, 2])
def test_augmentation_follows_the_example_and_the_pass_not_the_worker(workers):
    def batches(num_workers: int) -> list[torch.Tensor]:
        loader = torch.utils.data.DataLoader(
            Noisy(),
            batch_size=5,
            sampler=ShuffledPasses(24, seed=7, batch_size=5),
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(0),
        )
        return [b for _ in range(2) for b in loader]

    before = torch.get_rng_state()
    one, other = batches(0), batches(workers)
    assert torch.equal(torch.get_rng_state(), before)  # the training process's draws untouched
    assert all(torch.equal(a, b) for a, b in zip(one, other, strict=True))
    assert not torch.equal(one[0], one[5])  # the second pass draws anew


def test_a_seeded_index_reaches_a_worker_with_its_seed():
    import pickle

    index = pickle.loads(pickle.dumps(SeededIndex(4, 99)))
    assert index == 4 and index.seed == 99 and [10, 11, 12, 13, 14][index] == 14


def test_a_second_signal_stops_at_once(monkeypatch):
    callback = StepCheckpoint(path="unused.ckpt")
    raised = []
    callback.previous = {signal.SIGTERM: lambda signum, frame: raised.append(signum)}
    callback.active = True
    callback._caught(signal.SIGTERM, None)
    assert callback.requested == signal.SIGTERM and not raised  # the first: at the next step
    callback._caught(signal.SIGTERM, None)
    assert raised == [signal.SIGTERM]  # the second: handed on now


def test_a_non_positive_interval_is_one_line(tmp_path):
    result = run_cli(
        "train.py", *QUIET, "callbacks.step_checkpoint.every_s=0", f"hydra.run.dir={tmp_path}/r"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "callbacks.step_checkpoint" in lines[0] and "every_s" in lines[0]
    assert not (tmp_path / "r").exists()
