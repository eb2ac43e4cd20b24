"""Paired comparisons: two configs judged on the *same* validation examples.

Two runs measured on one validation split share its examples, so most of the split's sampling
noise cancels in their difference: what is left is how often they disagree. Each run writes the
per-example outcomes of its best checkpoint on val to `val_outcomes.npz`, from which every
metric it logs can be recounted on any subset of the examples:

- a metric that is a mean over examples (accuracy, a loss, a NELBO): the difference of two runs
  is the mean of the per-example differences, and its standard error is theirs, std / sqrt(n)
  (for accuracy this is McNemar's comparison: only the examples where the two disagree count);
- macro F1, mIoU and pixel accuracy: a paired bootstrap, the same resampled examples (images,
  for segmentation) recounted for both runs.

With several seeds a step's outcome per example is the mean over its seeds. A goal without
per-example outcomes (mAP, a GAN's quality) has no paired comparison: the caller falls back to
the two runs' own standard errors and says so.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from practicum.platform.files import write_bytes

FILE_NAME = "val_outcomes.npz"
RESAMPLES = 400
SEED = 0
# the metrics recounted from more than per-example means, by the kind of outcomes
RECOUNTED = {"classification": ("f1",), "segmentation": ("miou", "pixel_acc")}


@dataclass
class Paired:
    """The candidate minus the kept step on the goal metric (in the goal's own direction: a
    positive gain is better), its paired standard error, and how it was measured."""

    gain: float
    se: float
    n: int
    method: str

    def line(self) -> str:
        return f"paired {self.gain:+.4f} ± {self.se:.4f} SE on {self.n:,} {self.method}"


def write_outcomes(run_dir: Path | str, outcomes: dict[str, Any] | None) -> Path | None:
    """`val_outcomes.npz` in the run directory (nothing when the task measured none)."""
    if not outcomes:
        return None
    arrays = {}
    for name, value in outcomes.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        arrays[name] = np.asarray(value)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return write_bytes(Path(run_dir) / FILE_NAME, buffer.getvalue())


def read_outcomes(run_dir: Path | str) -> dict[str, np.ndarray] | None:
    path = Path(run_dir) / FILE_NAME
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as content:
            return {name: content[name] for name in content.files}
    except (OSError, ValueError):
        return None


def _kind(outcomes: dict[str, np.ndarray]) -> str:
    return str(outcomes.get("kind", "means"))


def count(outcomes: dict[str, np.ndarray]) -> int:
    """How many examples (images) the outcomes hold."""
    for name, value in outcomes.items():
        if name != "kind" and value.ndim >= 1:
            return len(value)
    return 0


def has_metric(outcomes: dict[str, np.ndarray], name: str) -> bool:
    if name in RECOUNTED.get(_kind(outcomes), ()):
        return True
    value = outcomes.get(name)
    return value is not None and value.ndim == 1 and name != "kind"


def is_mean(outcomes: dict[str, np.ndarray], name: str) -> bool:
    return name not in RECOUNTED.get(_kind(outcomes), ())


def recount(outcomes: dict[str, np.ndarray], name: str, indices: np.ndarray) -> float:
    """The metric `name` on the examples `indices` (with repeats, for a bootstrap)."""
    if is_mean(outcomes, name):
        return float(outcomes[name][indices].astype(np.float64).mean())
    if _kind(outcomes) == "classification":
        classes = int(outcomes["num_classes"])
        pred, target = outcomes["pred"][indices], outcomes["target"][indices]
        hits = np.bincount(target[pred == target], minlength=classes)
        counts = np.bincount(pred, minlength=classes) + np.bincount(target, minlength=classes)
        present = counts > 0
        return float((2 * hits[present] / counts[present]).mean()) if present.any() else 0.0
    confusion = outcomes["confusion"][indices].astype(np.float64).sum(0)
    if name == "pixel_acc":
        return float(np.trace(confusion) / max(confusion.sum(), 1.0))
    hits = np.diagonal(confusion)
    union = confusion.sum(0) + confusion.sum(1) - hits
    counted = confusion.sum(0) + confusion.sum(1) > 0
    ignore = int(outcomes.get("ignore_index", -1))
    if 0 <= ignore < len(confusion):
        counted[ignore] = False
    return float((hits[counted] / union[counted]).mean()) if counted.any() else 0.0


def same_examples(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """Both runs measured the same examples in the same order: as many, with the same labels
    (the true pixels of each class per image, for segmentation)."""
    if _kind(a) != _kind(b) or count(a) != count(b) or count(a) == 0:
        return False
    if "target" in a and "target" in b:
        return bool(np.array_equal(a["target"], b["target"]))
    if "confusion" in a and "confusion" in b:
        return bool(np.array_equal(a["confusion"].sum(-1), b["confusion"].sum(-1)))
    return True


def compare(
    metric: str,
    mode: str,
    kept: list[dict[str, np.ndarray]],
    candidate: list[dict[str, np.ndarray]],
) -> Paired | str:
    """The paired gain of `candidate` over `kept` (each a step's seeds) on `metric`, or why there
    is none."""
    name = metric.split("/", 1)[-1]
    runs = [*kept, *candidate]
    if not kept or not candidate:
        return "a step has no val_outcomes.npz"
    if not all(has_metric(o, name) for o in runs):
        return f"no per-example outcomes for {name}"
    if not all(same_examples(runs[0], o) for o in runs[1:]):
        return "the steps measured different validation examples"
    sign = 1.0 if mode == "max" else -1.0
    n = count(runs[0])
    if n < 2:
        return "fewer than two validation examples"
    what = "images" if _kind(runs[0]) == "segmentation" else "examples"
    if is_mean(runs[0], name):
        per_kept = np.mean([o[name].astype(np.float64) for o in kept], axis=0)
        per_candidate = np.mean([o[name].astype(np.float64) for o in candidate], axis=0)
        differences = sign * (per_candidate - per_kept)
        se = float(differences.std() / math.sqrt(n))
        return Paired(float(differences.mean()), se, n, f"{what}, per-example differences")
    everything = np.arange(n)

    def gain(indices: np.ndarray) -> float:
        new = np.mean([recount(o, name, indices) for o in candidate])
        old = np.mean([recount(o, name, indices) for o in kept])
        return sign * float(new - old)

    generator = np.random.default_rng(SEED)
    resampled = [gain(generator.integers(0, n, n)) for _ in range(RESAMPLES)]
    return Paired(gain(everything), float(np.std(resampled)), n, f"{what}, paired bootstrap")
