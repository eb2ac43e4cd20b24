"""Section `memory`: peak RSS of the default `python train.py`, and RSS growth over a long fit."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

from rich.table import Table

from common import Settings, mark, run_worker
from startup import default_train_run

GROWTH_EPOCHS = 100
FIRST_SAMPLE_EPOCH = 10
# what counts as "no growth": allocator noise, not a per-epoch leak
GROWTH_TOLERANCE_MB = 8.0


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    epochs = settings.size(GROWTH_EPOCHS, 30)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        startup = earlier.get("startup")
        if startup and "train" in startup:  # the startup section ran the default run: reuse it
            peaks = [run["peak_rss_mb"] for run in startup["train"]["runs_detail"]]
        else:
            peaks = [default_train_run(Path(tmp) / "default")["peak_rss_mb"]]
        log(f"memory: default run peak RSS {max(peaks):.0f} MiB; {epochs}-epoch fit next")
        growth = run_worker("rss_growth.py", f"{tmp}/growth", str(epochs), what="RSS growth run")

    samples = {int(epoch): mb for epoch, mb in growth["rss_mb"].items()}
    last = max(samples)
    first = min(FIRST_SAMPLE_EPOCH, last)
    middle = min(samples, key=lambda e: abs(e - (first + last) / 2))
    growth_mb = samples[last]["total"] - samples[first]["total"]
    return {
        "default_run_peak_rss_mb": statistics.median(peaks),
        "default_run_peak_rss_runs": peaks,
        "growth_epochs": last,
        "rss_mb": {epoch: samples[epoch] for epoch in (first, middle, last)},
        "rss_max_mb": max(sample["total"] for sample in samples.values()),
        "growth_mb": growth_mb,
        "growth_tolerance_mb": GROWTH_TOLERANCE_MB,
        "no_growth": growth_mb <= GROWTH_TOLERANCE_MB,
    }


def table(result: dict[str, Any]) -> Table:
    table = Table(
        title="memory: resident set size (MiB)",
        caption="anon: heap and tensors; file: mapped libraries (torch's CUDA libraries among them)",
    )
    for column in ("measure", "total", "anon", "file", "ok"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    peak = f"{result['default_run_peak_rss_mb']:.0f}"
    table.add_row("peak RSS of `python train.py` (defaults)", peak, "", "", "")
    for epoch, mb in result["rss_mb"].items():
        table.add_row(
            f"RSS after epoch {epoch} of a {result['growth_epochs']}-epoch fit",
            *(f"{mb[kind]:.1f}" if kind in mb else "" for kind in ("total", "anon", "file")),
            "",
        )
    first, last = list(result["rss_mb"])[0], list(result["rss_mb"])[-1]
    table.add_row(
        f"growth, epoch {first} -> {last} (tolerance {result['growth_tolerance_mb']:.0f} MiB)",
        f"{result['growth_mb']:+.1f}",
        "",
        "",
        mark(result["no_growth"]),
    )
    return table
