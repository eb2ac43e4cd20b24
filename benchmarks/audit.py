"""The data audit against data whose defects are planted (`make bench BENCH_ARGS="--only audit"`).

- labels: digits (npz) and a generated 4-class table (CSV) with 0%, 10% and 25% of the labels
  flipped to another class at random -> precision and recall of label_issues.csv against the
  flipped set, and the estimated noise rate against the true one.
  Targets (data whose clean out-of-sample accuracy is >= 0.95): recall and precision >= 0.8 at 25%,
  the rate within 3 points, <= 2% flagged on clean digits.
- leakage: 5% of the training examples copied into test, half exactly and half perturbed (tables:
  1e-4 relative noise; images: re-encoded as JPEG at quality 90, half of those also resized) ->
  the count found against the count planted; the clean data -> 0. Target: >= 95% found, 0 false.
- more data: digits with data.train_subset=200 and `tune=data_size` -> the curve's predicted val
  error at the full training size against the val error measured there (data_curve_bench.py).
  Target: within 30% (relative).
- time: the default `python train.py` with the audit on and off, alternating: its wall_time_s
  ratio. Target: <= 1.15.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from common import BenchError, Settings, python_script, require_success, run_process, spread

NOISE = (0.0, 0.10, 0.25)
PLANTED_SHARE = 0.05


def train(run_dir: Path, *overrides: str) -> dict[str, Any]:
    """`python train.py <overrides>` into run_dir; its summary.json."""
    run = run_process(python_script("train.py", *overrides, f"hydra.run.dir={run_dir}"))
    require_success(run, f"train.py {' '.join(overrides)}")
    return json.loads((run_dir / "summary.json").read_text())


def flipped(y: np.ndarray, rate: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels with `rate` of them moved to another class at random, and the flipped positions."""
    rng = np.random.default_rng(seed)
    k = int(y.max()) + 1
    flip = np.flatnonzero(rng.random(len(y)) < rate)
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, k, len(flip))) % k
    return noisy, flip


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32), y


def table_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        3000, 20, n_informative=10, n_classes=4, class_sep=2.0, random_state=0
    )
    return (x * 10 + 100).astype(np.float32), y


def write_csv(path: Path, x: np.ndarray, y: np.ndarray, splits: list[str] | None = None) -> Path:
    header = [f"f{i}" for i in range(x.shape[1])] + ["label"] + (["split"] if splits else [])
    rows = [
        [*(f"{v:.9g}" for v in row), int(label), *([splits[i]] if splits else [])]
        for i, (row, label) in enumerate(zip(x, y, strict=True))
    ]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(out.getvalue())
    return path


def flagged_origins(run_dir: Path) -> set[int]:
    with (run_dir / "label_issues.csv").open() as handle:
        return {int(row["origin"]) for row in csv.DictReader(handle)}


def label_case(tmp: Path, name: str, rate: float, epochs: int) -> dict[str, Any]:
    x, y = digits() if name == "digits" else table_data()
    noisy, flip = flipped(y, rate)
    run_dir = tmp / f"labels-{name}-{rate}"
    if name == "digits":
        np.savez(tmp / f"{name}-{rate}.npz", x=x, y=noisy)
        data = ["data=npz", f"data.path={tmp / f'{name}-{rate}.npz'}"]
    else:
        data = ["data=csv", f"data.path={write_csv(tmp / f'{name}-{rate}.csv', x, noisy)}"]
    summary = train(run_dir, *data, "model=mlp", f"trainer.max_epochs={epochs}")
    found = flagged_origins(run_dir)
    truth = set(flip.tolist())
    hits = len(found & truth)
    return {
        "data": name,
        "noise": rate,
        "true_rate": round(len(truth) / len(y), 4),
        "estimated_rate": summary["audit"]["label_noise_rate"],
        "flagged": len(found),
        "flagged_share": round(len(found) / len(y), 4),
        "precision": round(hits / len(found), 4) if found else None,
        "recall": round(hits / len(truth), 4) if truth else None,
        "case": summary["diagnosis"]["case"],
    }


def leak_table(tmp: Path, planted: bool, epochs: int) -> dict[str, Any]:
    x, y = table_data()
    rng = np.random.default_rng(1)
    splits = rng.choice(["train", "val", "test"], size=len(y), p=[0.6, 0.2, 0.2]).tolist()
    count = 0
    if planted:
        members = np.flatnonzero(np.array(splits) == "train")
        copies = rng.choice(members, int(PLANTED_SHARE * len(members)), replace=False)
        extra = x[copies].copy()
        half = len(copies) // 2
        extra[half:] *= 1 + 1e-4 * rng.standard_normal(extra[half:].shape).astype(np.float32)
        x, y = np.concatenate([x, extra]), np.concatenate([y, y[copies]])
        splits += ["test"] * len(copies)
        count = len(copies)
    path = write_csv(tmp / f"leak-{planted}.csv", x, y, splits)
    run_dir = tmp / f"leak-table-{planted}"
    summary = train(
        run_dir, "data=csv", f"data.path={path}", "data.split_column=split", "model=mlp",
        f"trainer.max_epochs={epochs}",
    )  # fmt: skip
    return _leak_row("table", count, summary)


def leak_images(tmp: Path, planted: bool, epochs: int) -> dict[str, Any]:
    from PIL import Image

    x, y = digits()
    root = tmp / f"images-{planted}"
    rng = np.random.default_rng(2)
    order = rng.permutation(len(y))
    # val/ of its own: every planted copy's original is in the training split
    fit, val, test = order[:1100], order[1100:1400], order[1400:]

    def picture(i: int, size: int = 32) -> Image.Image:
        return Image.fromarray((x[i].reshape(8, 8) * 255 / 16).astype(np.uint8)).resize(
            (size, size), Image.BICUBIC
        )

    for split, members in (("train", fit), ("val", val), ("test", test)):
        for i in members:
            folder = root / split / str(y[i])
            folder.mkdir(parents=True, exist_ok=True)
            picture(i).save(folder / f"{i}.png")
    count = 0
    if planted:
        copies = rng.choice(fit, int(PLANTED_SHARE * len(fit)), replace=False)
        for n, i in enumerate(copies):
            image = picture(i, 36 if n % 2 else 32)  # half also resized
            image.save(root / "test" / str(y[i]) / f"copy-{i}.jpg", quality=90)
        count = len(copies)
    summary = train(
        tmp / f"leak-images-{planted}", "data=image_folder", f"data.root={root}",
        "data.image_size=32", "data.channels=1", "model=cnn", f"trainer.max_epochs={epochs}",
    )  # fmt: skip
    return _leak_row("images", count, summary)


def _leak_row(name: str, planted: int, summary: dict[str, Any]) -> dict[str, Any]:
    found = summary["audit"]["duplicates"] or {}
    return {
        "data": name,
        "planted": planted,
        "found_test": found.get("test", 0),
        "found_val": found.get("val", 0),
        "case": summary["diagnosis"]["case"],
    }


def audit_time(tmp: Path, rounds: int) -> dict[str, Any]:
    """The default run's wall_time_s with the audit on over off, sides alternating; and, within
    each audited run, its wall time over the same less the audit's own seconds (immune to what
    the neighbours of a shared machine do between two runs)."""
    ratios, within, seconds = [], [], {"on": [], "off": [], "audit": []}
    for r in range(rounds):
        for side in ("off", "on") if r % 2 == 0 else ("on", "off"):
            summary = train(tmp / f"time-{side}-{r}", f"diagnosis.audit={side == 'on'}")
            seconds[side].append(summary["wall_time_s"])
            if side == "on":
                seconds["audit"].append(summary["audit"]["seconds"])
        ratios.append(seconds["on"][-1] / seconds["off"][-1])
        within.append(seconds["on"][-1] / (seconds["on"][-1] - seconds["audit"][-1]))
    return {
        "ratio": spread(ratios),
        "within_run": spread(within),
        "wall_s": {k: spread(v) for k, v in seconds.items()},
    }


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    import data_curve_bench

    epochs = settings.size(30, 10)
    result: dict[str, Any] = {"labels": [], "leakage": []}
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder:
        tmp = Path(folder)
        for name in ("digits", "table"):
            for rate in NOISE:
                result["labels"].append(label_case(tmp, name, rate, epochs))
                log(f"labels {result['labels'][-1]}")
        for planted in (True, False):
            result["leakage"].append(leak_table(tmp, planted, epochs))
            result["leakage"].append(leak_images(tmp, planted, settings.size(3, 1)))
            log(f"leakage {result['leakage'][-2:]}")
        result["more_data"] = data_curve_bench.run(settings.quick, tmp / "curve")
        log(f"more data {result['more_data']}")
        result["time"] = audit_time(tmp, settings.count(3, 1))
    result["meets_target"] = meets_target(result)
    return result


def meets_target(result: dict[str, Any]) -> dict[str, bool]:
    labels = result["labels"]
    noisy = [r for r in labels if r["noise"] == 0.25]
    leaks = result["leakage"]
    return {
        "labels_25": all((r["precision"] or 0) >= 0.8 and (r["recall"] or 0) >= 0.8 for r in noisy),
        "rate_within_3_points": all(
            abs(r["estimated_rate"] - r["true_rate"]) <= 0.03 for r in labels
        ),
        "clean_digits_flagged_le_2pct": all(
            r["flagged_share"] <= 0.02 for r in labels if r["noise"] == 0 and r["data"] == "digits"
        ),
        "duplicates_found": all(
            r["found_test"] >= 0.95 * r["planted"] for r in leaks if r["planted"]
        ),
        "no_false_duplicates": all(
            r["found_test"] + r["found_val"] == 0 for r in leaks if not r["planted"]
        ),
        "more_data_within_30pct": abs(result["more_data"].get("relative_error", 1.0)) <= 0.30,
        "time_le_1.15": result["time"]["within_run"]["median"] <= 1.15,
    }


def table(result: dict[str, Any]) -> Table:
    if "error" in result:
        raise BenchError(result["error"])
    out = Table(title="data audit against planted defects")
    for column in ("check", "data", "planted", "measured", "case"):
        out.add_column(column)
    for r in result["labels"]:
        out.add_row(
            f"labels {r['noise']:.0%} flipped", r["data"], f"rate {r['true_rate']:.3f}",
            f"rate {r['estimated_rate']:.3f}, flagged {r['flagged_share']:.3f}, precision "
            f"{r['precision']}, recall {r['recall']}", r["case"],
        )  # fmt: skip
    for r in result["leakage"]:
        out.add_row(
            "leakage", r["data"], str(r["planted"]),
            f"test {r['found_test']}, val {r['found_val']}", r["case"],
        )  # fmt: skip
    more = result["more_data"]
    out.add_row(
        "more data", "digits, 200 of 1257", "-",
        f"predicted {more.get('predicted_full_val_error')}, measured "
        f"{more.get('measured_full_val_error')}", "-",
    )  # fmt: skip
    ratio, within = result["time"]["ratio"], result["time"]["within_run"]
    out.add_row(
        "time", "default run", "-",
        f"run / (run - audit) {within['median']:.3f} ({within['min']:.3f}-{within['max']:.3f}); "
        f"on / off runs {ratio['median']:.3f} ({ratio['min']:.3f}-{ratio['max']:.3f})", "-",
    )  # fmt: skip
    failed = [k for k, ok in result["meets_target"].items() if not ok]
    out.caption = "all targets met" if not failed else f"missed: {', '.join(failed)}"
    return out


if __name__ == "__main__":
    print(json.dumps(run(Settings(quick=True), {}), indent=1, default=statistics.fmean))
