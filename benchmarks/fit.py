"""Section `fit`: practicum's default training path vs a hand-written loop, each in a fresh process."""

from __future__ import annotations

import statistics
import tempfile
from typing import Any

from rich.table import Table

from common import BenchError, Settings, mark, run_worker, spread

EPOCHS = 20
TARGET_RATIO = 1.10
# the sides must land on comparable validation accuracy for the timing to mean anything
ACCURACY_TOLERANCE = 0.02
WORKERS = {
    "practicum": "fit_practicum.py",
    "lightning": "fit_lightning.py",
    "by_hand": "fit_by_hand.py",
}
LABELS = {
    "practicum": "practicum (build_trainer + fit)",
    "lightning": "bare Lightning Trainer (reference)",
    "by_hand": "hand-written PyTorch loop",
}


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    repeats = settings.count(5, 2)
    epochs = EPOCHS
    fits: dict[str, list[dict[str, Any]]] = {side: [] for side in WORKERS}
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
        for i in range(repeats):
            # rotate who goes first, so a change in machine load hits every side alike
            order = list(WORKERS)[i % len(WORKERS) :] + list(WORKERS)[: i % len(WORKERS)]
            for side in order:
                result = run_worker(
                    WORKERS[side], f"{tmp}/{side}-{i}", str(epochs), what=f"fit ({side})"
                )
                fits[side].append(result)
                log(
                    f"fit {i + 1}/{repeats} {side}: {result['fit_s']:.2f} s, val/acc {result['val_acc']:.4f}"
                )

    step_counts = {r["steps"] for side in fits.values() for r in side}
    if len(step_counts) != 1:
        raise BenchError(f"the sides ran different numbers of training steps: {step_counts}")
    (steps,) = step_counts
    sides = {side: summarize(results) for side, results in fits.items()}
    by_hand = sides["by_hand"]["fit_s"]["median"]
    for side in sides.values():
        side["ratio"] = side["fit_s"]["median"] / by_hand
        # what the side adds to each training step over the hand loop, epoch costs included
        side["extra_ms_per_step"] = 1000 * (side["fit_s"]["median"] - by_hand) / steps
    ratio = sides["practicum"]["ratio"]
    paired = [
        p["fit_s"] / h["fit_s"] for p, h in zip(fits["practicum"], fits["by_hand"], strict=True)
    ]
    accuracy_gap = max(side["val_acc"] for side in sides.values()) - min(
        side["val_acc"] for side in sides.values()
    )
    return {
        "epochs": epochs,
        "batch_size": 64,
        "repeats": repeats,
        "sides": sides,
        "ratio": ratio,
        "paired_ratio_median": statistics.median(paired),
        "steps": steps,
        "by_hand_ms_per_step": 1000 * by_hand / steps,
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
        title=f"fit: {result['epochs']} epochs ({result['steps']} steps), digits CNN, batch 64, "
        f"Adam 3e-3 (median of {result['repeats']} rotating fresh processes)",
        caption="practicum runs with its default callbacks and CSV logger; its stdout is not a TTY, "
        "so the rich bar does not redraw live. Extra ms/step: over the hand loop, per training "
        "step, epoch costs (validation, checkpoints, logging) included",
    )
    columns = ("", "fit s (median)", "min", "max", "x hand loop", "extra ms/step", "val/acc")
    for column in columns:
        table.add_column(column, justify="left" if not column else "right")
    for side, label in LABELS.items():
        s = result["sides"][side]
        table.add_row(
            label,
            f"{s['fit_s']['median']:.2f}",
            f"{s['fit_s']['min']:.2f}",
            f"{s['fit_s']['max']:.2f}",
            f"{s['ratio']:.2f}x",
            "" if side == "by_hand" else f"{s['extra_ms_per_step']:.2f}",
            f"{s['val_acc']:.4f}",
        )
    table.add_section()
    table.add_row(
        f"practicum vs by hand (target <= {result['target_ratio']:.2f}x): "
        f"{mark(result['meets_target'])}",
        f"{result['ratio']:.2f}x",
        "",
        "",
        f"paired {result['paired_ratio_median']:.2f}x",
        f"hand: {result['by_hand_ms_per_step']:.2f} ms",
        f"gap {result['accuracy_gap']:.4f}: {mark(result['accuracy_comparable'])}",
    )
    return table
