"""The learning curve's forecast against the error it forecasts: `tune=data_size` on 200 digits
extrapolated to the full training split, and plain runs on that split measuring it.

Both sides train the default digits CNN with the same recipe (conf/train.yaml); the curve's
prediction at the full split's size is read from its data_curve.json (`predicted_error`), the
measured error is 1 - val/acc of the plain runs, averaged over their seeds. Target: the
prediction within 30% of the measured error, relative.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from common import CONF_DIR, BenchError, python_script, require_success, run_process

SUBSET = 200
TARGET_RELATIVE_ERROR = 0.30
COMMON = ["data=digits", "diagnosis.baseline_model=null", "callbacks.progress_bar=null"]


def full_training_size() -> int:
    """The digits training split's size, as data/splits.py cuts it with conf/data/digits.yaml."""
    from omegaconf import OmegaConf
    from sklearn.datasets import load_digits

    from practicum.data.splits import split_sizes

    data = OmegaConf.load(CONF_DIR / "data" / "digits.yaml")
    count = len(load_digits().target)
    return split_sizes(count, float(data.val_fraction), float(data.test_fraction))["train"]


def curve_once(log_dir: Path, seeds: int) -> dict[str, Any]:
    """`tune=data_size` on the first SUBSET training examples; its data_curve.json."""
    args = ["tune=data_size", f"data.train_subset={SUBSET}", f"tune.seeds={seeds}", *COMMON]
    run = run_process(python_script("train.py", *args, f"paths.log_dir={log_dir}"))
    require_success(run, "tune=data_size")
    (path,) = log_dir.glob("*/runs/*/data_curve.json")
    return json.loads(path.read_text())


def measured_error(log_dir: Path, seed: int) -> float:
    """1 - val/acc of a plain run on the whole training split."""
    run = run_process(
        python_script("train.py", *COMMON, f"seed={seed}", f"paths.log_dir={log_dir}")
    )
    require_success(run, f"the plain run with seed {seed}")
    (path,) = log_dir.glob("*/runs/*/summary.json")
    summary = json.loads(path.read_text())
    if summary.get("objective") is None:
        raise BenchError(f"the plain run with seed {seed} ended {summary.get('status')}")
    return 1.0 - float(summary["objective"])


def run(quick: bool, results_dir: Path) -> dict[str, Any]:
    """The prediction at the full split, the measured error there, and how far apart they are."""
    from practicum.methodology.data_curve import predicted_error

    seeds = [0] if quick else [0, 1, 2]
    results_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="data-curve-", dir=results_dir))  # kept: the runs' reports
    curve = curve_once(work / "curve", seeds=len(seeds))
    full = full_training_size()
    predicted = predicted_error(curve, full)
    measured = [measured_error(work / f"full-seed{seed}", seed) for seed in seeds]
    mean = statistics.fmean(measured)
    relative = abs(predicted - mean) / mean if predicted is not None and mean > 0 else None
    return {
        "subset": SUBSET,
        "full_size": full,
        "fit": {"a": curve["a"], "b": curve["b"], "flattened": curve["flattened"]},
        "curve_sizes": curve["sizes"],
        "curve_mean_errors": curve["mean_errors"],
        "measured_errors": measured,
        "predicted_full_val_error": predicted,
        "measured_full_val_error": mean,
        "relative_error": relative,
        "meets_target": relative is not None and relative <= TARGET_RELATIVE_ERROR,
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results-dir", type=Path, default=Path("benchmarks/results/data_curve"))
    options = parser.parse_args()
    print(json.dumps(run(options.quick, options.results_dir), indent=2))
