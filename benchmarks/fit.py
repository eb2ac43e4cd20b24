"""Section `fit`: practicum's default training path vs a bare Lightning Trainer and a hand-written
loop, each in a fresh process; then what each of practicum's features costs on top of the bare
Lightning fit (fit_features.py)."""

from __future__ import annotations

import statistics
import tempfile
from typing import Any

from rich.table import Table

from common import BenchError, Settings, mark, run_worker, spread
from fit_lightning import FEATURES

EPOCHS = 20
# practicum's fit, every feature on, against the bare Lightning fit of the same model and data
TARGET_RATIO = 1.05
# the sides must land on comparable validation accuracy for the timing to mean anything
ACCURACY_TOLERANCE = 0.02
WORKERS = {
    "practicum": "fit_practicum.py",
    "lightning": "fit_lightning.py",
    "by_hand": "fit_by_hand.py",
}
LABELS = {
    "practicum": "practicum (build_trainer + fit)",
    "lightning": "bare Lightning Trainer",
    "by_hand": "hand-written PyTorch loop (reference)",
}
# ratio name -> (numerator side, denominator side)
RATIOS = {
    "practicum_vs_lightning": ("practicum", "lightning"),
    "practicum_vs_by_hand": ("practicum", "by_hand"),
    "lightning_vs_by_hand": ("lightning", "by_hand"),
}


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    repeats = settings.count(5, 2)
    fits: dict[str, list[dict[str, Any]]] = {side: [] for side in WORKERS}
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
        for i in range(repeats):
            # rotate who goes first, so a change in machine load hits every side alike
            order = list(WORKERS)[i % len(WORKERS) :] + list(WORKERS)[: i % len(WORKERS)]
            for side in order:
                result = run_worker(
                    WORKERS[side], f"{tmp}/{side}-{i}", str(EPOCHS), what=f"fit ({side})"
                )
                fits[side].append(result)
                log(
                    f"fit {i + 1}/{repeats} {side}: {result['fit_s']:.2f} s, val/acc {result['val_acc']:.4f}"
                )
        features = measure_features(settings, tmp, log)

    step_counts = {r["steps"] for side in fits.values() for r in side}
    if len(step_counts) != 1:
        raise BenchError(f"the sides ran different numbers of training steps: {step_counts}")
    (steps,) = step_counts
    sides = {side: summarize(results) for side, results in fits.items()}
    by_hand = sides["by_hand"]["fit_s"]["median"]
    lightning = sides["lightning"]["fit_s"]["median"]
    for side in sides.values():
        side["ratio"] = side["fit_s"]["median"] / by_hand
        side["ratio_to_lightning"] = side["fit_s"]["median"] / lightning
        # what the side adds to each training step over the hand loop, epoch costs included
        side["extra_ms_per_step"] = 1000 * (side["fit_s"]["median"] - by_hand) / steps
    # each repeat's sides ran back to back: their ratio is the figure, spread over the repeats
    ratios = {
        name: spread(
            [a["fit_s"] / b["fit_s"] for a, b in zip(fits[top], fits[bottom], strict=True)]
        )
        for name, (top, bottom) in RATIOS.items()
    }
    ratio = ratios["practicum_vs_lightning"]["median"]
    accuracy_gap = max(side["val_acc"] for side in sides.values()) - min(
        side["val_acc"] for side in sides.values()
    )
    return {
        "epochs": EPOCHS,
        "batch_size": 64,
        "repeats": repeats,
        "sides": sides,
        "ratios": ratios,
        "ratio": ratio,
        "steps": steps,
        "by_hand_ms_per_step": 1000 * by_hand / steps,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "accuracy_gap": accuracy_gap,
        "accuracy_comparable": accuracy_gap <= ACCURACY_TOLERANCE,
        "features": features,
    }


def measure_features(settings: Settings, tmp: str, log=print) -> dict[str, Any]:
    """Each feature's fit time over the bare Lightning fit's, measured in the same process
    (fit_features.py), one process per repeat, the order rotated from one to the next."""
    repeats = settings.count(3, 1)
    epochs = settings.size(EPOCHS, 10)
    rounds = []
    for i in range(repeats):
        result = run_worker(
            "fit_features.py", f"{tmp}/features-{i}", str(epochs), str(i * 4), what="fit features"
        )
        rounds.append(result["fits"])
        log(
            f"fit features {i + 1}/{repeats}: bare {result['fits']['bare']['fit_s']:.2f} s, "
            f"all {result['fits']['all']['fit_s']:.2f} s"
        )
    costs = {}
    for name in [*FEATURES, "all"]:
        costs[name] = {
            "what": FEATURES.get(name, "every feature above at once"),
            "fit_s": spread([r[name]["fit_s"] for r in rounds]),
            "ratio": spread([r[name]["fit_s"] / r["bare"]["fit_s"] for r in rounds]),
            "val_acc": statistics.median(r[name]["val_acc"] for r in rounds),
        }
    return {
        "repeats": repeats,
        "epochs": epochs,
        "bare_fit_s": spread([r["bare"]["fit_s"] for r in rounds]),
        "costs": costs,
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "fit_s": spread([r["fit_s"] for r in results]),
        "val_acc": statistics.median(r["val_acc"] for r in results),
        "best_val_acc": statistics.median(r["best_val_acc"] for r in results),
        "epochs_run": [r["epochs"] for r in results],
    }


def table(result: dict[str, Any]) -> Table:
    features = result["features"]
    table = Table(
        title=f"fit: {result['epochs']} epochs ({result['steps']} steps), digits CNN, batch 64, "
        f"Adam 3e-3 ({result['repeats']} rounds of rotating fresh processes)",
        caption="Ratios: each round's sides ran back to back; median, min and max over the rounds. "
        "practicum runs with its default callbacks and CSV logger; its stdout is not a TTY, so the "
        "rich bar does not redraw live. Extra ms/step: over the hand loop, per training step, epoch "
        "costs (validation, checkpoints, logging) included. Features: each alone on the bare "
        f"Lightning fit ({features['epochs']} epochs, {features['repeats']} processes, the fits of "
        "one process in rotating order after a warm-up fit)",
    )
    for column in ("", "median", "min", "max", "notes"):
        table.add_column(column, justify="left" if column in ("", "notes") else "right")
    for side, label in LABELS.items():
        s = result["sides"][side]
        extra = "" if side == "by_hand" else f"; +{s['extra_ms_per_step']:.2f} ms/step over hand"
        table.add_row(
            f"{label}, fit s",
            *cells(s["fit_s"], "{:.2f}"),
            f"val/acc {s['val_acc']:.4f}{extra}",
        )
    table.add_section()
    ratios = result["ratios"]
    table.add_row(
        f"practicum / bare Lightning (target <= {result['target_ratio']:.2f})",
        *cells(ratios["practicum_vs_lightning"], "{:.3f}x"),
        f"met: {mark(result['meets_target'])}; accuracy gap {result['accuracy_gap']:.4f}: "
        f"{mark(result['accuracy_comparable'])}",
    )
    table.add_row(
        "practicum / hand loop (reference)",
        *cells(ratios["practicum_vs_by_hand"], "{:.3f}x"),
        f"hand loop: {result['by_hand_ms_per_step']:.2f} ms/step",
    )
    table.add_row("bare Lightning / hand loop", *cells(ratios["lightning_vs_by_hand"], "{:.3f}x"))
    table.add_section()
    bare = features["bare_fit_s"]
    table.add_row("bare Lightning (features below: x this), fit s", *cells(bare, "{:.2f}"))
    for name, cost in features["costs"].items():
        table.add_row(
            f"+ {name}" if name != "all" else "+ all of them",
            *cells(cost["ratio"], "{:.3f}x"),
            f"{cost['what']}; {cost['fit_s']['median']:.2f} s",
        )
    return table


def cells(numbers: dict[str, Any], fmt: str) -> list[str]:
    return [fmt.format(numbers[key]) for key in ("median", "min", "max")]
