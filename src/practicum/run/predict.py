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
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from rich.console import Console

from practicum.config import part_name
from practicum.config.validate import declared_problem
from practicum.data.splits import rows_named
from practicum.errors import UserError
from practicum.run.build import build_datamodule, build_task

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
console = Console()


def predict_run(cfg: DictConfig) -> int:
    """Predict every input; return how many were predicted."""
    from practicum.run.evaluate import load_run_config

    run_cfg = load_run_config(str(cfg.ckpt_path))
    problem = declared_problem(run_cfg.model)
    if problem != "classification":
        raise UserError(
            f"predict.py handles classification models; ckpt_path={cfg.ckpt_path} holds "
            f"model={part_name(run_cfg, 'model')} ({problem}): use eval.py for it"
        )
    source = Path(str(cfg.input))
    kind = input_kind(source)
    output = Path(str(cfg.output))
    require_writable(output)
    datamodule = build_datamodule(run_cfg)
    task = build_task(run_cfg, with_optimizer=False)
    checkpoint = torch.load(str(cfg.ckpt_path), map_location="cpu", weights_only=True)
    task.load_state_dict(checkpoint["state_dict"])
    task.eval()

    names, inputs = read_inputs(source, kind, datamodule)
    probabilities = []
    with torch.inference_mode():
        for start in range(0, len(inputs), int(cfg.batch_size)):
            probabilities.append(task.predict_step(inputs[start : start + int(cfg.batch_size)], 0))
    probs = torch.cat(probabilities).numpy()
    write_predictions(output, names, probs, list(datamodule.class_names))
    console.print(f"{len(names)} predictions: {output}", soft_wrap=True)
    return len(names)


def input_kind(source: Path) -> str:
    """ "csv", "image" or "folder": what `input=` names, checked before anything is built."""
    if not source.exists():
        raise UserError(f"input={source} does not exist: pass a CSV file, an image or a folder")
    if source.is_dir():
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in source.rglob("*")):
            raise UserError(
                f"input={source} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}): "
                "pass a folder of images, an image or a CSV file"
            )
        return "folder"
    suffix = source.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise UserError(
        f"input={source} is neither a CSV file nor an image ({', '.join(sorted(IMAGE_SUFFIXES))}): "
        "pass a CSV of feature rows, an image or a folder of images"
    )


def require_writable(output: Path) -> None:
    """`output=` can be written: not a folder, and its folder can be made and written in."""
    if output.is_dir():
        raise UserError(f"output={output} is a folder: pass the path of a .csv file to write")
    folder = output.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UserError(
            f"output={output} cannot be written ({folder} is not a writable folder): "
            "pass output=<a path you can write>"
        )


def read_inputs(source: Path, kind: str, datamodule: Any) -> tuple[list[str], torch.Tensor]:
    """(names, preprocessed batch) for a CSV of features, an image, or a folder of images."""
    takes_images = getattr(datamodule, "takes_images", hasattr(datamodule, "encode_images"))
    if kind == "csv":
        if not hasattr(datamodule, "encode"):
            raise UserError(
                f"input={source} is a CSV but this model was trained on image files: pass images"
            )
        width = int(np.prod(datamodule.input_shape))
        lines, rows = read_feature_rows(source, getattr(datamodule, "label_column", "label"), width)
        return [f"line {line}" for line in lines], datamodule.encode(rows)
    if not takes_images:
        raise UserError(
            f"input={source} holds images but this model was trained on feature rows of shape "
            f"{list(datamodule.input_shape)}: pass a CSV of those"
        )
    images = (
        sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if kind == "folder"
        else [source]
    )
    return [str(p) for p in images], datamodule.encode_images(images)


def read_feature_rows(path: Path, label_column: str, width: int) -> tuple[list[int], np.ndarray]:
    """(line numbers, rows of `width` numbers): a header row and a label column are left out; an
    empty, NaN or inf value, a word or a row of another width is one line naming the file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"input={path} is not a readable CSV file ({exc})") from exc
    if rows and not _numeric(rows[0][1]):
        header, rows = rows[0][1], rows[1:]
        keep = [i for i, name in enumerate(header) if name.strip() != label_column]
        rows = [(line, [row[i] for i in keep if i < len(row)]) for line, row in rows]
    if not rows:
        raise UserError(f"input={path} holds no rows: one row of {width} numbers per example")
    values = np.empty((len(rows), width))
    for r, (line, row) in enumerate(rows):
        if len(row) != width:
            raise UserError(
                f"input={path} line {line} has {len(row)} values but the model takes {width} "
                "(its training features, in their order): one row of those per example"
            )
        try:
            values[r] = [float(v) if v.strip() else math.nan for v in row]
        except ValueError as exc:
            raise UserError(
                f"input={path} line {line} has a value that is not a number ({exc})"
            ) from exc
    bad = [rows[i][0] for i in np.flatnonzero(~np.isfinite(values).all(axis=1))]
    if bad:
        raise UserError(
            f"input={path} has empty, NaN or inf values in {rows_named(bad, 'lines')}: fix or drop them"
        )
    return [line for line, _ in rows], values


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
