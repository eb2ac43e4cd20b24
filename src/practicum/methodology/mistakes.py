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
        size = min(3 + 0.45 * k, 22)
        fig, ax = plt.subplots(figsize=(size + 1.5, size))
        image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        if k <= 20:
            for i, j in zip(*np.nonzero(matrix), strict=True):
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")  # fmt: skip
        ticks = range(k) if k <= 30 else range(0, k, max(1, k // 15))
        ax.set_xticks(list(ticks), [names[t] for t in ticks], rotation=90, fontsize=8)
        ax.set_yticks(list(ticks), [names[t] for t in ticks], fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("given label")
        fig.colorbar(image, ax=ax, fraction=0.046, label="share of the given label's examples")
    else:
        pairs = most_confused(given, predicted)
        fig, ax = plt.subplots(figsize=(9, 0.3 * max(len(pairs), 4) + 1.5))
        labels = [f"{names[a]} -> {names[b]}" for a, b, _ in pairs]
        ax.barh(range(len(pairs)), [c for *_, c in pairs], color="tab:red")
        ax.set_yticks(range(len(pairs)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("validation examples")
    accuracy = float((given == predicted).mean()) if len(given) else 0.0
    heading = f"Validation mistakes: {int((given != predicted).sum())} of {len(given)} (accuracy {accuracy:.4f})"
    if k > MATRIX_CLASSES:
        heading += f"; the {TOP_PAIRS} most-confused pairs of {k} classes"
    ax.set_title(f"{title}\n{heading}" if title else heading, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def _picture(image) -> tuple[np.ndarray, str | None]:
    """An image tensor (C x H x W, any scaling) as something imshow draws, stretched to [0, 1]."""
    values = image.detach().float().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    values = values.astype(np.float64)
    low, high = values.min(), values.max()
    values = (values - low) / (high - low) if high > low else np.zeros_like(values)
    if values.ndim == 3 and values.shape[0] in (1, 3):
        values = values[0] if values.shape[0] == 1 else values.transpose(1, 2, 0)
    return values, "gray" if values.ndim == 2 else None


def gallery(images: Sequence, captions: Sequence[str], path: Path, title: str) -> Path:
    """Images in a grid, each with its caption (given label, prediction, score)."""
    plt = _pyplot()
    columns = min(6, max(len(images), 1))
    rows = max(-(-len(images) // columns), 1)
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.1 * columns, 2.4 * rows + 0.6), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions, strict=False):
        picture, cmap = _picture(image)
        ax.imshow(picture, cmap=cmap, interpolation="nearest")
        ax.set_title(caption, fontsize=7)
    fig.suptitle(title, fontsize=10)
    # fixed margins: tight_layout would measure every caption, the slowest part of the picture
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.9 / fig.get_figheight(),
                        wspace=0.1, hspace=0.55)  # fmt: skip
    save_figure(fig, path, dpi=90)
    plt.close(fig)
    return path
