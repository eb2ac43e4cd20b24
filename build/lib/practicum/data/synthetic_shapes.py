"""Synthetic shapes: coloured rectangles, ellipses and triangles on textured backgrounds.

Generated on the fly from a seed (nothing to download), sized by config. Each image holds
1..max_objects shapes that do not overlap, so every box is tight and every mask pixel has one
owner. Classes: 0 background, 1 rectangle, 2 ellipse, 3 triangle. Detection gets boxes and
labels; segmentation gets the per-pixel class mask. Each split has its own seed.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
from PIL import Image, ImageDraw

from practicum.config.constraints import OpenFraction, PositiveInt, at_least
from practicum.data.dense import DenseData, Examples
from practicum.errors import UserError

CLASS_NAMES = ["background", "rectangle", "ellipse", "triangle"]
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour field plus stripes and pixel noise: texture the shapes must beat."""
    coarse = rng.uniform(40, 200, size=(4, 4, 3)).astype(np.float32)
    field = np.asarray(
        Image.fromarray(coarse.astype(np.uint8)).resize((size, size), Image.BILINEAR), np.float32
    )
    period = rng.uniform(6, 20)
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[0:size, 0:size]
    stripes = 15 * np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * 2 * np.pi / period)
    noise = rng.normal(0, 8, size=(size, size, 3))
    return np.clip(field + stripes[..., None] + noise, 0, 255).astype(np.uint8)


def _overlaps(box: tuple[int, int, int, int], taken: list[tuple[int, int, int, int]]) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] + 2 and b[0] < x1 + 2 and y0 < b[3] + 2 and b[1] < y1 + 2 for b in taken)


def draw_scene(
    rng: np.random.Generator, size: int, max_objects: int, min_frac: float, max_frac: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image `(H, W, 3)` uint8, its boxes `(N, 4)` xyxy, labels `(N,)` and class mask `(H, W)`."""
    image = Image.fromarray(_background(rng, size))
    mask = Image.new("L", (size, size), 0)
    paint, paint_mask = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    boxes: list[tuple[int, int, int, int]] = []
    labels: list[int] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            w, h = (int(rng.uniform(min_frac, max_frac) * size) for _ in range(2))
            x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            box = (x0, y0, x0 + w, y0 + h)
            if not _overlaps(box, boxes):
                break
        else:
            continue
        label = int(rng.integers(1, len(CLASS_NAMES)))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        corners = [x0, y0, x0 + w - 1, y0 + h - 1]
        if label == 1:
            shape = lambda d, fill, c=corners: d.rectangle(c, fill=fill)  # noqa: E731
        elif label == 2:
            shape = lambda d, fill, c=corners: d.ellipse(c, fill=fill)  # noqa: E731
        else:
            apex = x0 + int(rng.uniform(0.2, 0.8) * (w - 1))
            points = [(apex, y0), (x0, y0 + h - 1), (x0 + w - 1, y0 + h - 1)]
            shape = lambda d, fill, p=points: d.polygon(p, fill=fill)  # noqa: E731
        shape(paint, colour)
        shape(paint_mask, label)
        boxes.append(box)
        labels.append(label)
    return (
        np.array(image),
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(labels, dtype=np.int64),
        np.array(mask, dtype=np.int64),
    )


class ShapesData(DenseData):
    """`train_size`/`val_size`/`test_size` scenes of `image_size` px, generated once in setup()."""

    def __init__(
        self,
        train_size: Annotated[int, at_least(2)] = 512,
        val_size: Annotated[int, PositiveInt] = 128,
        test_size: Annotated[int, PositiveInt] = 128,
        max_objects: Annotated[int, PositiveInt] = 3,
        min_object_frac: Annotated[float, OpenFraction] = 0.15,
        max_object_frac: Annotated[float, OpenFraction] = 0.45,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not 0 < min_object_frac <= max_object_frac < 1:
            raise UserError(
                f"data.min_object_frac={min_object_frac}, data.max_object_frac={max_object_frac}: "
                "need 0 < min_object_frac <= max_object_frac < 1 (for example 0.15 and 0.45)"
            )
        if self.image_size * min_object_frac < 4:
            raise UserError(
                f"data.image_size={self.image_size} is too small for shapes of "
                f"{min_object_frac:.0%} of the image: use data.image_size=64 or more"
            )
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.max_objects, self.seed = max_objects, seed
        self.fractions = (min_object_frac, max_object_frac)

    def describe(self) -> str:
        return f"shapes_{self.problem}"

    def load_splits(self) -> dict[str, Examples]:
        self.class_names = list(CLASS_NAMES)
        return {split: self._generate(split, count) for split, count in self.sizes.items()}

    def _generate(self, split: str, count: int) -> Examples:
        rng = np.random.default_rng([self.seed, SPLIT_SEEDS[split]])
        scenes = [
            draw_scene(rng, self.image_size, self.max_objects, *self.fractions)
            for _ in range(count)
        ]
        images = torch.stack([torch.from_numpy(s[0]).permute(2, 0, 1) for s in scenes])
        if self.problem == "segmentation":
            masks = torch.stack([torch.from_numpy(s[3]) for s in scenes])
            return Examples(lambda i: (images[i].float() / 255, masks[i]), count)
        targets = [
            {"boxes": torch.from_numpy(s[1]), "labels": torch.from_numpy(s[2])} for s in scenes
        ]
        return Examples(lambda i: (images[i].float() / 255, targets[i]), count)


class ShapesDetectionData(ShapesData):
    problem = "detection"


class ShapesSegmentationData(ShapesData):
    problem = "segmentation"
