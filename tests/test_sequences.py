"""Recurrent classifiers on real sequence data: digits read row by row, the adding problem, a CSV file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import compose_train, run_cli, train

SHORT = ["trainer.max_epochs=4", "diagnosis.baseline_model=null"]


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_recurrent_nets_learn_digit_rows(tmp_path: Path, model: str):
    value, summary, run_dir = train(tmp_path, [f"model={model}", *SHORT])
    assert summary["status"] == "completed" and summary["epochs_trained"] == 4
    # chance is 0.1: four short epochs of reading rows already recognize most digits
    assert value == pytest.approx(summary["metrics"]["val/acc"])
    assert summary["metrics"]["val/acc"] > 0.8
    assert summary["metrics"]["test/acc"] > 0.8
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_adding_problem_trains_on_packed_variable_lengths(tmp_path: Path):
    from practicum.run.build import build_datamodule

    cfg = compose_train(tmp_path, ["model=gru", "data=adding", "data.num_sequences=600"])
    data = build_datamodule(cfg)
    (padded, lengths), y = next(iter(data.loader("train")))
    assert padded.shape[1] == int(lengths.max()) and lengths.min() < lengths.max()
    assert cfg.data.input_shape == [40, 2] and set(y.tolist()) <= {0, 1}
    _, summary, _ = train(
        tmp_path / "run", ["model=gru", "data=adding", "data.num_sequences=600", *SHORT]
    )
    assert summary["status"] == "completed"
    assert all(math.isfinite(v) for v in summary["metrics"].values())
    assert summary["metrics"]["train/loss"] < math.log(2) + 0.05  # not worse than chance


def test_packing_ignores_the_padding():
    from practicum.nets.rnn import RecurrentClassifier

    torch.manual_seed(0)
    net = RecurrentClassifier([6, 3], 4, cell="lstm", hidden_size=8, bidirectional=True).eval()
    short, full = torch.randn(1, 4, 3), torch.randn(1, 6, 3)
    padded = torch.cat([torch.cat([short, torch.full((1, 2, 3), 9.0)], 1), full])
    batch = net((padded, torch.tensor([4, 6])))
    assert torch.allclose(batch[0], net(short)[0], atol=1e-5)
    assert torch.allclose(batch[1], net(full)[0], atol=1e-5)


def _write_sequences_csv(path: Path) -> Path:
    """The digits as sequences of their rows, blank rows at the bottom dropped: 5 to 8 steps."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    lines = ["id,label," + ",".join(f"p{i}" for i in range(8))]
    for n, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        rows = [row for row in image]
        while len(rows) > 5 and not rows[-1].any():
            rows.pop()
        lines += [f"s{n},digit_{label}," + ",".join(f"{v:g}" for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_sequences_of_different_lengths(tmp_path: Path):
    path = _write_sequences_csv(tmp_path / "digits_rows.csv")
    overrides = ["model=lstm", "data=csv_sequences", f"data.path={path}", *SHORT]
    cfg = compose_train(tmp_path, overrides)
    assert cfg.parts.data == "csv_sequences"  # the command line wins over the model's default data
    value, summary, _ = train(tmp_path / "csv", overrides)
    assert summary["status"] == "completed"
    assert value > 0.7


def test_csv_sequences_errors_name_the_fix(tmp_path: Path):
    from practicum.data.sequences import CSVSequences
    from practicum.errors import UserError

    bad = tmp_path / "bad.csv"
    bad.write_text("id,label,x\na,0,1\na,1,2\n")
    with pytest.raises(UserError, match="every row of a sequence needs the same label"):
        CSVSequences(path=str(bad)).setup()
    with pytest.raises(UserError, match="set data.id_column"):
        CSVSequences(path=str(bad), id_column="sequence").setup()


def test_mismatched_data_is_one_clear_line():
    wrong = run_cli("train.py", "model=lstm", "data=wine")
    assert wrong.returncode == 2
    assert "model=lstm solves sequence_classification but data=wine" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_normalization_uses_only_valid_steps(tmp_path: Path):
    cfg = compose_train(tmp_path, ["model=lstm", "data=adding", "data.normalize=per_feature"])
    from practicum.run.build import build_datamodule

    data = build_datamodule(cfg)
    x, _ = data.splits["train"]
    valid = torch.arange(x.shape[1])[None, :] < data.lengths["train"][:, None]
    steps = x[valid].numpy()
    assert np.allclose(steps.mean(0), 0, atol=1e-4) and np.allclose(steps.std(0), 1, atol=1e-2)
    assert (x[~valid] == 0).all()  # padding stays zero
