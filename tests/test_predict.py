"""predict.py: a trained classifier labels new inputs with the preprocessing of its training data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from test_image_data import write_image_folder

from conftest import run_cli, train


def _predictions(tmp_path: Path) -> list[dict[str, str]]:
    (out,) = (tmp_path / "logs" / "predict" / "runs").glob("*/predictions.csv")
    with open(out, newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.smoke
def test_predict_csv_rows_of_raw_digits(tmp_path: Path):
    from sklearn.datasets import load_digits

    _, summary, _ = train(tmp_path, ["trainer.max_epochs=4", "diagnosis.baseline_model=null"])
    digits = load_digits()
    table = tmp_path / "new_digits.csv"
    with open(table, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([f"pixel_{i}" for i in range(64)] + ["label"])
        for x, y in zip(digits.data[:60], digits.target[:60], strict=True):
            writer.writerow([*x.astype(int), y])
    result = run_cli(
        "predict.py",
        f"ckpt_path={summary['best_checkpoint']}",
        f"input={table}",
        f"paths.log_dir={tmp_path}/logs",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = _predictions(tmp_path)
    assert len(rows) == 60 and set(rows[0]) >= {"input", "prediction", "probability", "p_0", "p_9"}
    correct = sum(
        row["prediction"] == str(y) for row, y in zip(rows, digits.target[:60], strict=True)
    )
    assert correct >= 50, correct  # the model reached ~0.95 on held-out digits
    for row in rows:
        probs = [float(row[f"p_{k}"]) for k in range(10)]
        assert abs(sum(probs) - 1) < 1e-4 and float(row["probability"]) == max(probs)


def test_predict_a_folder_of_images(tmp_path: Path):
    root = write_image_folder(tmp_path / "images", per_class=12)
    _, summary, _ = train(
        tmp_path,
        [
            "data=image_folder",
            f"data.root={root}",
            "data.image_size=16",
            "data.batch_size=8",
            "trainer.max_epochs=6",
            "diagnosis.baseline_model=null",
        ],
    )
    new = tmp_path / "new"
    write_image_folder(new, per_class=2)
    result = run_cli(
        "predict.py",
        f"ckpt_path={summary['best_checkpoint']}",
        f"input={new}",
        f"paths.log_dir={tmp_path}/logs",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = _predictions(tmp_path)
    assert len(rows) == 6
    # each class has its own dominant colour channel: the folder name is the right answer
    assert sum(Path(row["input"]).parent.name == row["prediction"] for row in rows) >= 5


def test_predict_refuses_a_missing_input(tmp_path: Path):
    _, summary, _ = train(tmp_path, ["trainer.max_epochs=1", "diagnosis.baseline_model=null"])
    result = run_cli(
        "predict.py",
        f"ckpt_path={summary['best_checkpoint']}",
        f"input={tmp_path / 'nothing.csv'}",
        f"paths.log_dir={tmp_path}/logs",
    )
    assert result.returncode == 2
    assert "nothing.csv does not exist" in result.stderr and "Traceback" not in result.stderr
