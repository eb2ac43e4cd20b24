"""predict.py: a trained classifier labels new inputs with the preprocessing of its training data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

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


@pytest.mark.smoke
def test_predict_image_files_for_a_model_trained_on_in_memory_digits(tmp_path: Path):
    from PIL import Image
    from sklearn.datasets import load_digits

    _, summary, _ = train(tmp_path, ["trainer.max_epochs=4", "diagnosis.baseline_model=null"])
    digits = load_digits()
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(40):  # the 8x8 digits (values 0..16) as 8-bit grey PNGs
        pixels = (digits.images[i] * 255 / 16).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:02d}_{digits.target[i]}.png")
    result = run_cli(
        "predict.py",
        f"ckpt_path={summary['best_checkpoint']}",
        f"input={folder}",
        f"paths.log_dir={tmp_path}/logs",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = _predictions(tmp_path)
    assert len(rows) == 40
    correct = sum(row["prediction"] == Path(row["input"]).stem.split("_")[1] for row in rows)
    assert correct >= 32, correct  # the model reached ~0.95 on held-out digits


# every image-trained classifier takes image files: the nets on in-memory and on file images
IMAGE_MODELS = [
    ("digits", "mlp"),
    ("digits", "linear"),
    ("digits", "residual_mlp"),
    ("digits", "resnet"),
    ("digits", "vgg"),
    ("digits", "inception"),
    ("image_folder", "mlp"),
    ("image_folder", "vgg"),
    ("mnist", "mlp"),
    ("cifar10", "cnn"),
]


@pytest.mark.parametrize(
    ("data", "model"),
    [
        pytest.param(d, m, marks=pytest.mark.slow) if m in ("vgg", "inception") else (d, m)
        for d, m in IMAGE_MODELS
    ],
    ids=[f"{d}-{m}" for d, m in IMAGE_MODELS],
)
def test_every_image_classifier_predicts_image_files(tmp_path: Path, data: str, model: str):
    from practicum.run.predict import predict_run
    from test_image_data import write_cifar10, write_mnist

    writers = {
        "image_folder": lambda root: write_image_folder(root, per_class=7),
        "mnist": write_mnist,
        "cifar10": write_cifar10,
    }
    roots = [f"data.root={writers[data](tmp_path / 'data')}"] if data in writers else []
    size = ["data.image_size=32"] if data == "image_folder" else []
    _, summary, _ = train(
        tmp_path,
        [
            f"data={data}",
            *roots,
            *size,
            f"model={model}",
            "debug=fast",
            "diagnosis.baseline_model=null",
        ],
    )
    new = write_image_folder(tmp_path / "new", per_class=1)
    output = tmp_path / "predictions.csv"
    cfg = OmegaConf.create(
        {
            "ckpt_path": summary["best_checkpoint"],
            "input": str(new),
            "output": str(output),
            "batch_size": 2,
        }
    )
    assert predict_run(cfg) == 3
    with open(output, newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 3 and all(0 < float(row["probability"]) <= 1 for row in rows)
