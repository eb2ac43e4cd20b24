"""predictions.png: what a detection or segmentation model sees on a few validation images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from practicum.platform.files import save_figure

IGNORE = 255


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _hwc(image: Tensor) -> np.ndarray:
    return image.detach().cpu().float().clamp(0, 1).permute(1, 2, 0).numpy()


def _name(names: list[str], label: int) -> str:
    return names[label] if 0 <= label < len(names) else str(label)


def detection_picture(
    images: list[Tensor],
    detections: list[dict[str, Tensor]],
    targets: list[dict[str, Tensor]],
    class_names: list[str],
    min_score: float,
    path: Path,
    title: str = "",
) -> Path:
    """One panel per image: true boxes dashed white, predictions (score >= min_score) in colour."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    columns = min(3, len(images))
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.4 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, found, truth in zip(axes.flat, images, detections, targets, strict=False):
        ax.imshow(_hwc(image))
        for box in truth["boxes"].tolist():
            x0, y0, x1, y1 = box
            ax.add_patch(
                Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", lw=1.5, ec="white")
            )
        keep = found["scores"] >= min_score
        for box, label, score in zip(
            found["boxes"][keep].tolist(),
            found["labels"][keep].tolist(),
            found["scores"][keep].tolist(),
            strict=True,
        ):
            x0, y0, x1, y1 = box
            colour = colours(label % 10)
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=2, ec=colour))
            ax.text(
                x0,
                max(y0 - 2, 0),
                f"{_name(class_names, label)} {score:.2f}",
                fontsize=10,
                color="white",
                va="bottom",
                bbox={"facecolor": colour, "alpha": 0.85, "pad": 1, "lw": 0},
            )
        ax.set_title(f"{int(keep.sum())} predicted, {len(truth['boxes'])} true", fontsize=11)
    heading = f"Predictions on validation images (score >= {min_score:g}; true boxes dashed)"
    fig.suptitle(f"{title}\n{heading}" if title else heading, fontsize=13)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def segmentation_picture(
    images: list[Tensor],
    predicted: list[Tensor],
    masks: list[Tensor],
    class_names: list[str],
    path: Path,
    title: str = "",
) -> Path:
    """One row per image: the image, its true mask, the predicted mask (ignored pixels white)."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    count = max(len(class_names), 1)
    palette = plt.get_cmap("tab20" if count > 10 else "tab10")
    colours = ListedColormap([palette(i % palette.N) for i in range(count)])
    colours = colours.with_extremes(bad="white")
    fig, axes = plt.subplots(len(images), 3, figsize=(10, 3.3 * len(images)), squeeze=False)
    for row, (image, guess, truth) in enumerate(zip(images, predicted, masks, strict=True)):
        shown = [_hwc(image), _masked(truth), _masked(guess)]
        for col, (ax, picture) in enumerate(zip(axes[row], shown, strict=True)):
            if col == 0:
                ax.imshow(picture)
            else:
                ax.imshow(picture, cmap=colours, vmin=-0.5, vmax=count - 0.5, interpolation="none")
            ax.axis("off")
            if row == 0:
                ax.set_title(("image", "true mask", "predicted mask")[col], fontsize=12)
    legend = [Patch(color=colours(i), label=_name(class_names, i)) for i in range(count)]
    fig.legend(handles=legend[:20], loc="lower center", ncol=min(len(legend), 6), fontsize=10)
    heading = "Predicted vs true masks on validation images"
    fig.suptitle(f"{title}\n{heading}" if title else heading, fontsize=13)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def _masked(mask: Tensor) -> np.ma.MaskedArray:
    values = mask.detach().cpu().numpy()
    return np.ma.masked_where(values == IGNORE, values)
