"""The worst mistakes (fastai's `most_confused` and `plot_top_losses`): a confusion matrix picture,
the most-confused pairs beyond 50 classes, and galleries of examples with their labels.

Counts come from the (given, predicted) pairs of the mistakes only, so time and memory stay linear
in examples: a 10,000-class problem never builds a 10,000 x 10,000 matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from practicum.platform.files import save_figure

MATRIX_CLASSES = 50  # above this, the picture shows the most-confused pairs instead of the matrix
TOP_PAIRS = 25


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def most_confused(given: np.ndarray, predicted: np.ndarray, top: int = TOP_PAIRS) -> list[tuple]:
    """The (given, predicted, count) pairs of the mistakes, most frequent first."""
    wrong = given != predicted
    if not wrong.any():
        return []
    pairs, counts = np.unique(
        np.stack([given[wrong], predicted[wrong]]), axis=1, return_counts=True
    )
    order = np.argsort(-counts, kind="stable")[:top]
    return [(int(pairs[0, i]), int(pairs[1, i]), int(counts[i])) for i in order]


def confusion_picture(
    given: np.ndarray, predicted: np.ndarray, names: Sequence[str], path: Path, title: str = ""
) -> Path:
    """The confusion matrix (rows: given label, columns: predicted; each row as shares) up to
    MATRIX_CLASSES classes; the most-confused pairs as bars beyond that."""
    plt = _pyplot()
    k = len(names)
    if k <= MATRIX_CLASSES:
        matrix = np.zeros((k, k))
        np.add.at(matrix, (given, predicted), 1)
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        size = min(3.5 + 0.45 * k, 22)
        fig = plt.figure(figsize=(size, size + 0.4))
        # fixed margins, no colour bar: tight_layout and a second axes cost more than the picture
        ax = fig.add_axes((0.16, 0.14, 0.8, 0.72))
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        if k <= 20:
            for i, j in zip(*np.nonzero(matrix), strict=True):
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")  # fmt: skip
        ticks = range(k) if k <= 30 else range(0, k, max(1, k // 15))
        ax.set_xticks(list(ticks), [names[t] for t in ticks], rotation=90, fontsize=8)
        ax.set_yticks(list(ticks), [names[t] for t in ticks], fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("given label (colour: share of its examples)")
    else:
        pairs = most_confused(given, predicted)
        fig, ax = plt.subplots(figsize=(9, 0.3 * max(len(pairs), 4) + 1.5), layout="tight")
        labels = [f"{names[a]} -> {names[b]}" for a, b, _ in pairs]
        ax.barh(range(len(pairs)), [c for *_, c in pairs], color="tab:red")
        ax.set_yticks(range(len(pairs)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("validation examples")
    accuracy = float((given == predicted).mean()) if len(given) else 0.0
    heading = f"Validation mistakes: {int((given != predicted).sum())} of {len(given)} (accuracy {accuracy:.4f})"
    if k > MATRIX_CLASSES:
        heading += f"; the {TOP_PAIRS} most-confused pairs of {k} classes"
    ax.set_title(f"{title}\n{heading}" if title else heading, fontsize=9)
    save_figure(fig, path, dpi=90)
    plt.close(fig)
    return path


def _picture(image) -> np.ndarray:
    """An image tensor (C x H x W, any scaling) as H x W x 3 values in [0, 1]."""
    values = image.detach().float().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    values = values.astype(np.float64)
    if values.ndim == 2:
        values = values[None]
    low, high = values.min(), values.max()
    values = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return (
        np.repeat(values, 3, axis=0).transpose(1, 2, 0)
        if values.shape[0] == 1
        else values[:3].transpose(1, 2, 0)
    )


def _mosaic(pictures: list[np.ndarray], columns: int) -> tuple[np.ndarray, int, int, int]:
    """The pictures on one white canvas, each in a cell of the largest one's size (enlarged to 64
    pixels at least) below a band for its caption; returns the canvas, cell height and width, and
    the band's height."""
    scale = max(1, -(-64 // max(max(p.shape[:2]) for p in pictures)))
    pictures = [p.repeat(scale, axis=0).repeat(scale, axis=1) for p in pictures]
    height = max(p.shape[0] for p in pictures)
    width = max(p.shape[1] for p in pictures)
    band, gap = height // 3, max(2, width // 16)
    cell_h, cell_w = band + height + gap, width + gap
    rows = -(-len(pictures) // columns)
    canvas = np.ones((rows * cell_h, columns * cell_w, 3))
    for n, picture in enumerate(pictures):
        top, left = (n // columns) * cell_h + band, (n % columns) * cell_w
        canvas[top : top + picture.shape[0], left : left + picture.shape[1]] = picture
    return canvas, cell_h, cell_w, band


def gallery(images: Sequence, captions: Sequence[str], path: Path, title: str) -> Path:
    """Images in a grid, each with its caption (given label, prediction, score): one mosaic in one
    axes, which draws in a fraction of the time of an axes per image."""
    plt = _pyplot()
    columns = min(6, max(len(images), 1))
    canvas, cell_h, cell_w, band = _mosaic([_picture(image) for image in images], columns)
    width = 2.1 * columns
    fig = plt.figure(figsize=(width, width * canvas.shape[0] / canvas.shape[1] + 0.7))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1 - 0.7 / fig.get_figheight()))
    ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    for n, caption in enumerate(captions[: len(images)]):
        row, column = divmod(n, columns)
        ax.text(column * cell_w + (cell_w - 1) / 2, row * cell_h + band - 1, caption,
                fontsize=7, ha="center", va="bottom")  # fmt: skip
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path, dpi=80)
    plt.close(fig)
    return path
