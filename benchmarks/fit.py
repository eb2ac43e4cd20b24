"""Section `fit`: practicum's default training path vs a hand-written loop, each in a fresh process."""

from __future__ import annotations

import statistics
import tempfile
from typing import Any

from rich.table import Table

from common import BenchError, Settings, mark, run_worker, spread

EPOCHS = 20
TARGET_RATIO = 1.10
# the two sides must land on comparable validation accuracy for the timing to mean anything
ACCURACY_TOLERANCE = 0.02
WORKERS = {"practicum": "fit_practicum.py", "by_hand": "fit_by_hand.py"}
LABELS = {"practicum": "practicum (build_trainer + fit)", "by_hand": "hand-written PyTorch loop"}


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    repeats = settings.count(5, 2)
    epochs = EPOCHS
    fits: dict[str, list[dict[str, Any]]] = {side: [] for side in WORKERS}
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
        for i in range(repeats):
            # alternate who goes first, so a change in machine load hits both sides alike
            order = list(WORKERS) if i % 2 == 0 else list(reversed(WORKERS))
            for side in order:
                result = run_worker(
                    WORKERS[side], f"{tmp}/{side}-{i}", str(epochs), what=f"fit ({side})"
                )
                fits[side].append(result)
                log(
                    f"fit {i + 1}/{repeats} {side}: {result['fit_s']:.2f} s, val/acc {result['val_acc']:.4f}"
                )

    sides = {side: summarize(results) for side, results in fits.items()}
    ratio = sides["practicum"]["fit_s"]["median"] / sides["by_hand"]["fit_s"]["median"]
    paired = [
        p["fit_s"] / h["fit_s"] for p, h in zip(fits["practicum"], fits["by_hand"], strict=True)
    ]
    # the same number of steps on both sides; what practicum adds per step, epoch costs included
    step_counts = {r["steps"] for side in fits.values() for r in side}
    if len(step_counts) != 1:
        raise BenchError(f"the two sides ran different numbers of training steps: {step_counts}")
    (steps,) = step_counts
    extra_ms_per_step = (
        1000 * (sides["practicum"]["fit_s"]["median"] - sides["by_hand"]["fit_s"]["median"]) / steps
    )
    accuracy_gap = abs(sides["practicum"]["val_acc"] - sides["by_hand"]["val_acc"])
    return {
        "epochs": epochs,
        "batch_size": 64,
        "repeats": repeats,
        "sides": sides,
        "ratio": ratio,
        "paired_ratio_median": statistics.median(paired),
        "steps": steps,
        "extra_ms_per_step": extra_ms_per_step,
        "by_hand_ms_per_step": 1000 * sides["by_hand"]["fit_s"]["median"] / steps,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "accuracy_gap": accuracy_gap,
        "accuracy_comparable": accuracy_gap <= ACCURACY_TOLERANCE,
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "fit_s": spread([r["fit_s"] for r in results]),
        "val_acc": statistics.median(r["val_acc"] for r in results),
        "best_val_acc": statistics.median(r["best_val_acc"] for r in results),
        "epochs_run": [r["epochs"] for r in results],
    }


def table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"fit: {result['epochs']} epochs, digits CNN, batch 64, Adam 3e-3 "
        f"(median of {result['repeats']} alternating fresh processes)",
        caption="practicum runs with its default callbacks and CSV logger; its stdout is not a TTY, "
        "so the rich bar does not redraw live",
    )
    for column in ("", "fit s (median)", "min", "max", "val/acc (last)", "val/acc (best)"):
        table.add_column(column, justify="left" if not column else "right")
    for side, label in LABELS.items():
        s = result["sides"][side]
        table.add_row(
            label,
            f"{s['fit_s']['median']:.2f}",
            f"{s['fit_s']['min']:.2f}",
            f"{s['fit_s']['max']:.2f}",
            f"{s['val_acc']:.4f}",
            f"{s['best_val_acc']:.4f}",
        )
    table.add_row(
        f"ratio (target <= {result['target_ratio']:.2f}x): {mark(result['meets_target'])}",
        f"{result['ratio']:.2f}x",
        "",
        "",
        f"gap {result['accuracy_gap']:.4f}",
        f"comparable: {mark(result['accuracy_comparable'])}",
        end_section=True,
    )
    table.add_row("median of paired ratios", f"{result['paired_ratio_median']:.2f}x")
    table.add_row(
        f"extra time per step ({result['steps']} steps)",
        f"{result['extra_ms_per_step']:.2f} ms",
        "",
        "",
        f"by hand: {result['by_hand_ms_per_step']:.2f} ms",
    )
    return table
