"""`python predict.py ckpt_path=... input=...`: a trained classifier's predictions for new inputs.

The data and model are rebuilt from the config stored in the checkpoint, so new inputs get exactly
the preprocessing the training data had (the training split's normalization, the image size). Inputs:
a CSV file of feature rows (tabular and in-memory image data such as digits: one row per example,
the features in training order; a `label` column, if present, is ignored), or an image file or a
folder of images (image datasets). Writes predictions.csv: the input, the predicted class, its
probability and the probability of every class.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from rich.console import Console

from practicum.build import build_datamodule, build_task
from practicum.config import part_name
from practicum.errors import UserError
from practicum.validate import declared_problem

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
console = Console()


def predict_run(cfg: DictConfig) -> int:
    """Predict every input; return how many were predicted."""
    from practicum.evaluate import load_run_config

    run_cfg = load_run_config(str(cfg.ckpt_path))
    problem = declared_problem(run_cfg.model)
    if problem != "classification":
        raise UserError(
            f"predict.py handles classification models; ckpt_path={cfg.ckpt_path} holds "
            f"model={part_name(run_cfg, 'model')} ({problem}): use eval.py for it"
        )
    source = Path(str(cfg.input))
    if not source.exists():
        raise UserError(f"input={source} does not exist: pass a CSV file, an image or a folder")
    datamodule = build_datamodule(run_cfg)
    task = build_task(run_cfg, with_optimizer=False)
    checkpoint = torch.load(str(cfg.ckpt_path), map_location="cpu", weights_only=True)
    task.load_state_dict(checkpoint["state_dict"])
    task.eval()

    names, inputs = read_inputs(source, datamodule)
    probabilities = []
    with torch.inference_mode():
        for start in range(0, len(inputs), int(cfg.batch_size)):
            probabilities.append(task.predict_step(inputs[start : start + int(cfg.batch_size)], 0))
    probs = torch.cat(probabilities).numpy()
    output = Path(str(cfg.output))
    write_predictions(output, names, probs, list(datamodule.class_names))
    console.print(f"{len(names)} predictions: {output}", soft_wrap=True)
    return len(names)


def read_inputs(source: Path, datamodule: Any) -> tuple[list[str], torch.Tensor]:
    """(names, preprocessed batch) for a CSV of features, an image, or a folder of images."""
    if source.is_file() and source.suffix.lower() == ".csv":
        if not hasattr(datamodule, "encode"):
            raise UserError(
                f"input={source} is a CSV but this model was trained on image files: pass images"
            )
        rows = _read_feature_rows(source, getattr(datamodule, "label_column", "label"))
        return [f"row {i}" for i in range(len(rows))], datamodule.encode(rows)
    images = (
        sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if source.is_dir()
        else [source]
    )
    if not images or images[0].suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(f"input={source} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if not hasattr(datamodule, "encode_images"):
        raise UserError(
            f"input={source} holds images but this model was trained on feature rows: pass a CSV"
        )
    return [str(p) for p in images], datamodule.encode_images(images)


def _read_feature_rows(path: Path, label_column: str) -> np.ndarray:
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    if rows and not _numeric(rows[0]):
        header, rows = rows[0], rows[1:]
        keep = [i for i, name in enumerate(header) if name != label_column]
        rows = [[row[i] for i in keep] for row in rows]
    if not rows:
        raise UserError(f"input={path} holds no rows: one row of numbers per example")
    try:
        return np.asarray(rows, dtype=np.float64)
    except ValueError as exc:
        raise UserError(f"input={path} has a value that is not a number: {exc}") from exc


def _numeric(row: list[str]) -> bool:
    try:
        [float(value) for value in row]
    except ValueError:
        return False
    return True


def write_predictions(path: Path, names: list[str], probs: np.ndarray, classes: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["input", "prediction", "probability", *[f"p_{c}" for c in classes]])
        for name, row in zip(names, probs, strict=True):
            best = int(row.argmax())
            writer.writerow([name, classes[best], f"{row[best]:.6f}", *[f"{p:.6f}" for p in row]])
