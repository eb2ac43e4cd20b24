"""Section `images`: practicum's `data=image_folder` loader against a plain torchvision one.

A folder of generated PNGs in the real layout (`train/<class>/*.png`, `test/<class>/*.png`, made
once under benchmarks/results/cache/) is read two ways with the same standard augmentation, batch
size and workers: practicum's training loader, and `torchvision.datasets.ImageFolder` with a
`DataLoader` written by hand. Epochs alternate between the two sides, in one fresh process per
worker count; the ratio practicum / torchvision of images/s is taken per round (target >= 0.95).

The second table trains the image folder's default net (model=cnn) on the same images: the step
time with real loading against the same batches preloaded as tensors, with no workers and with the
default `num_workers`, and the time the loop waits for the next batch. With the default workers
that wait must stay within 5% of a step (a ratio near 1 says the same, but on a busy 2-core machine
it also holds the loader worker's share of the CPU).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from rich.table import Table

from common import BENCH_DIR, Settings, mark, run_worker

CACHE_DIR = BENCH_DIR / "results" / "cache"
IMAGES = 3000
CLASSES = 4
SIZE = 64
TARGET_RATIO = 0.95
# the step does not wait on data: waiting for the next batch takes at most this share of a step
WAIT_TOLERANCE = 0.05


def image_folder(count: int, size: int = SIZE, classes: int = CLASSES) -> Path:
    """A folder of `count` training PNGs (and a fifth as many test PNGs), written once and reused."""
    root = CACHE_DIR / f"images-{count}-{size}px-{classes}c"
    done = root / ".complete"
    if done.exists():
        return root
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", count), ("test", max(classes * 2, count // 5))):
        for c in range(classes):
            (root / split / f"class{c}").mkdir(parents=True, exist_ok=True)
        labels = np.arange(n) % classes
        for i, label in enumerate(labels):
            # noise plus a bright band whose row says the class: learnable, and PNG cannot squash it
            pixels = rng.integers(0, 160, size=(size, size, 3), dtype=np.uint8)
            band = size // classes
            pixels[label * band : (label + 1) * band, :, label % 3] = 255
            Image.fromarray(pixels).save(root / split / f"class{label}" / f"{i:06d}.png")
    done.write_text(f"{count} train images\n")
    return root


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    root = image_folder(settings.size(IMAGES, 1000))
    rounds = settings.count(5, 2)
    loaders, steps = {}, {}
    for workers in ("0", "default"):
        loaders[workers] = run_worker(
            "images_worker.py", "loaders", str(root), workers, str(rounds), what="loader rounds"
        )
        ratio = loaders[workers]["ratio"]["median"]
        log(
            f"images: {loaders[workers]['num_workers']} workers, practicum / torchvision {ratio:.3f}"
        )
    for workers in ("0", "default"):
        steps[workers] = run_worker(
            "images_worker.py",
            "steps",
            str(root),
            workers,
            str(settings.count(6, 2)),
            what="step rounds",
        )
        log(f"images: step with loading / preloaded {steps[workers]['ratio']['median']:.3f}")
    default_wait = steps["default"]["wait_share"]["median"]
    worst_loader = min(result["ratio"]["median"] for result in loaders.values())
    return {
        "images": IMAGES if not settings.quick else 1000,
        "image_size": SIZE,
        "root": str(root),
        "loaders": loaders,
        "steps": steps,
        "target_ratio": TARGET_RATIO,
        "meets_target": worst_loader >= TARGET_RATIO,
        "wait_tolerance": WAIT_TOLERANCE,
        "default_workers_keep_up": default_wait <= WAIT_TOLERANCE,
    }


def table(result: dict[str, Any]) -> list[Table] | Table:
    loaders = Table(
        title=f"images: {result['images']} PNGs ({result['image_size']} px, standard augmentation), "
        "training loader images/s, epochs alternating",
    )
    for column in ("workers", "practicum img/s", "torchvision img/s", "ratio median", "min", "max"):
        loaders.add_column(column, justify="left" if column == "workers" else "right")
    for name, side in result["loaders"].items():
        label = f"{side['num_workers']}" + (" (default)" if name == "default" else "")
        ratio = side["ratio"]
        loaders.add_row(
            label,
            f"{side['practicum_images_per_s']['median']:.0f}",
            f"{side['torchvision_images_per_s']['median']:.0f}",
            f"{ratio['median']:.3f}",
            f"{ratio['min']:.3f}",
            f"{ratio['max']:.3f}",
        )
    loaders.caption = (
        f"ratio: practicum / torchvision images/s per round, target >= "
        f"{result['target_ratio']:.2f}: {mark(result['meets_target'])}"
    )
    steps = Table(
        title="images: training step (model=cnn, batch 64, 512 images), real loading vs preloaded"
    )
    columns = (
        "workers",
        "ms/step loading",
        "of which waiting",
        "ms/step preloaded",
        "ratio median",
        "min",
        "max",
    )
    for column in columns:
        steps.add_column(column, justify="left" if column == "workers" else "right")
    for name, side in result["steps"].items():
        ratio = side["ratio"]
        steps.add_row(
            f"{side['num_workers']}" + (" (default)" if name == "default" else ""),
            f"{side['loading_ms_per_step']['median']:.1f}",
            f"{side['wait_ms_per_step']['median']:.1f}",
            f"{side['preloaded_ms_per_step']['median']:.1f}",
            f"{ratio['median']:.3f}",
            f"{ratio['min']:.3f}",
            f"{ratio['max']:.3f}",
        )
    steps.caption = (
        "ratio: ms/step loading / preloaded per round; with the default workers the wait for "
        f"data <= {result['wait_tolerance']:.0%} of a step: {mark(result['default_workers_keep_up'])}"
    )
    return [loaders, steps]


def ratio_spread(numerators: list[float], denominators: list[float]) -> dict[str, Any]:
    ratios = [a / b for a, b in zip(numerators, denominators, strict=True)]
    return {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "runs": [round(r, 4) for r in ratios],
    }
