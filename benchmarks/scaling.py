"""Section `scaling`: fit time and peak RSS at 1x, 4x and 16x the training set.

Two kinds of data, each trained by `model=cnn` for the same number of epochs through practicum's
default build (scaling_worker.py, one fresh process per fit):

- in memory: the digits repeated 1, 4 and 16 times in an .npz file (`data=npz`);
- image files: 400, 1600 and 6400 generated 32 px PNGs (`data=image_folder`, default workers).

Per fit: the fit time per training example against the same round's 1x fit (no worse than linear:
<= 1.10, the noise of this machine), and the peak resident set of the fit process (the kernel's
own count, its reaped loader workers included) and of its largest loader worker. The peak RSS of
file-backed data must not grow with the folder (<= 32 MiB from 1x to 16x). Sizes run in
alternating order, round by round.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from rich.table import Table

from common import (
    RESULT_PREFIX,
    BenchError,
    Settings,
    mark,
    python_script,
    require_success,
    run_process,
)
from images import CACHE_DIR, image_folder, ratio_spread

SCALES = (1, 4, 16)
EPOCHS = 2
BASE_IMAGES = 400
IMAGE_SIZE = 32
# time per example at N x may exceed 1x by this much (run-to-run noise), and no more
LINEAR_TOLERANCE = 1.10
RSS_TOLERANCE_MB = 32.0


def digits_npz(scale: int) -> Path:
    """sklearn's digits as 1x8x8 images, repeated `scale` times, written once."""
    path = CACHE_DIR / f"digits-x{scale}.npz"
    if not path.exists():
        import numpy as np
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = np.tile(digits.images[:, None].astype(np.float32), (scale, 1, 1, 1))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=x, y=np.tile(digits.target, scale))
    return path


def overrides(kind: str, scale: int) -> list[str]:
    if kind == "in_memory":
        return ["data=npz", f"data.path={digits_npz(scale)}", "model=cnn"]
    root = image_folder(BASE_IMAGES * scale, size=IMAGE_SIZE)
    return ["data=image_folder", f"data.root={root}", f"data.image_size={IMAGE_SIZE}", "model=cnn"]


def fit(tmp: str, kind: str, scale: int, round_: int) -> dict[str, Any]:
    output = f"{tmp}/{kind}-x{scale}-{round_}"
    command = python_script(
        "benchmarks/scaling_worker.py", output, str(EPOCHS), *overrides(kind, scale)
    )
    run = require_success(run_process(command), f"{kind} fit at {scale}x")
    for line in reversed(run.output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            result["peak_rss_mb"] = run.peak_rss_mb
            result["wall_s"] = run.wall_s
            return result
    raise BenchError(f"{kind} fit at {scale}x reported no result:\n{run.tail()}")


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    rounds = settings.count(2, 1)
    fits: dict[str, dict[int, list[dict[str, Any]]]] = {
        kind: {scale: [] for scale in SCALES} for kind in ("in_memory", "image_files")
    }
    for kind in fits:  # the data is written once, before anything is timed
        for scale in SCALES:
            overrides(kind, scale)
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        for i in range(rounds):
            order = SCALES if i % 2 == 0 else tuple(reversed(SCALES))
            for kind in fits:
                for scale in order:
                    result = fit(tmp, kind, scale, i)
                    fits[kind][scale].append(result)
                    log(
                        f"scaling {kind} {scale}x: {result['train_examples']} examples, "
                        f"fit {result['fit_s']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MiB"
                    )
    kinds = {kind: summarize(by_scale) for kind, by_scale in fits.items()}
    linear = all(
        row["per_example_ratio"]["median"] <= LINEAR_TOLERANCE
        for summary in kinds.values()
        for row in summary.values()
    )
    files = kinds["image_files"]
    rss_growth = files[SCALES[-1]]["peak_rss_mb"] - files[SCALES[0]]["peak_rss_mb"]
    return {
        "epochs": EPOCHS,
        "rounds": rounds,
        "kinds": kinds,
        "fits": fits,
        "linear_tolerance": LINEAR_TOLERANCE,
        "no_worse_than_linear": linear,
        "file_rss_growth_mb": rss_growth,
        "rss_tolerance_mb": RSS_TOLERANCE_MB,
        "file_rss_flat": rss_growth <= RSS_TOLERANCE_MB,
    }


def summarize(by_scale: dict[int, list[dict[str, Any]]]) -> dict[int, dict[str, Any]]:
    """Per scale: medians, and the fit time per example against the same round's 1x fit."""
    base = by_scale[SCALES[0]]
    per_example = {
        scale: [r["fit_s"] / r["train_examples"] for r in runs] for scale, runs in by_scale.items()
    }
    return {
        scale: {
            "train_examples": runs[0]["train_examples"],
            "loader_workers": runs[0]["loader_workers"],
            "fit_s": statistics.median(r["fit_s"] for r in runs),
            "load_s": statistics.median(r["load_s"] for r in runs),
            "per_example_ratio": ratio_spread(per_example[scale], per_example[SCALES[0]]),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "worker_peak_rss_mb": statistics.median(r["worker_peak_rss_mb"] for r in runs),
        }
        for scale, runs in by_scale.items()
        if len(runs) == len(base)
    }


def table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"scaling: model=cnn, {result['epochs']} epochs, 1x / 4x / 16x the training set "
        f"(medians of {result['rounds']} rounds)",
        caption="time/example: fit seconds per training example over the same round's 1x fit",
    )
    columns = (
        "data",
        "scale",
        "train examples",
        "fit s",
        "time/example vs 1x",
        "min",
        "max",
        "peak RSS MiB",
        "worker RSS MiB",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "data" else "right")
    for kind, summary in result["kinds"].items():
        for scale, row in summary.items():
            ratio = row["per_example_ratio"]
            workers = row["loader_workers"]
            table.add_row(
                kind.replace("_", " ") if scale == SCALES[0] else "",
                f"{scale}x",
                str(row["train_examples"]),
                f"{row['fit_s']:.2f}",
                f"{ratio['median']:.2f}",
                f"{ratio['min']:.2f}",
                f"{ratio['max']:.2f}",
                f"{row['peak_rss_mb']:.0f}",
                f"{row['worker_peak_rss_mb']:.0f} ({workers})" if workers else "-",
                end_section=scale == SCALES[-1],
            )
    table.caption = (
        f"{table.caption}\nno worse than linear (<= {result['linear_tolerance']:.2f}): "
        f"{mark(result['no_worse_than_linear'])}; file-backed peak RSS 1x -> 16x "
        f"{result['file_rss_growth_mb']:+.0f} MiB (<= {result['rss_tolerance_mb']:.0f}): "
        f"{mark(result['file_rss_flat'])}"
    )
    return table
