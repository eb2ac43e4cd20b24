"""Section `steps`: realistic steps. ResNet-18 on synthetic 3x32x32 images at batch 64 on the CPU,
a fixed number of training steps after a warm-up: practicum's train path (its task and
build_trainer, everything on) vs a hand-written loop with the same net, batches, seed and
optimizer (steps_worker.py), each in a fresh process, sides alternating."""

from __future__ import annotations

import statistics
import tempfile
from typing import Any

from rich.table import Table

from common import BenchError, Settings, mark, run_worker, spread

TARGET_RATIO = 1.03
SIDES = ("practicum", "by_hand")
LABELS = {
    "practicum": "practicum (task + build_trainer, everything on)",
    "by_hand": "hand-written PyTorch loop",
}


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    repeats = settings.count(3, 1)
    warmup, steps = settings.size(2, 1), settings.size(10, 2)
    windows: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="bench-steps-") as tmp:
        for i in range(repeats):
            order = SIDES if i % 2 == 0 else SIDES[::-1]
            for side in order:
                result = run_worker(
                    "steps_worker.py",
                    side,
                    f"{tmp}/{side}-{i}",
                    str(warmup),
                    str(steps),
                    what=f"steps ({side})",
                )
                if result["steps"] != steps:
                    raise BenchError(f"steps ({side}) timed {result['steps']} steps, not {steps}")
                windows[side].append(result)
                log(f"steps {i + 1}/{repeats} {side}: {result['window_s']:.2f} s for {steps} steps")
    ratios = [
        p["window_s"] / h["window_s"]
        for p, h in zip(windows["practicum"], windows["by_hand"], strict=True)
    ]
    ratio = spread(ratios)
    sides = {
        side: {
            "window_s": spread([r["window_s"] for r in results]),
            "ms_per_step": statistics.median(1000 * r["window_s"] / steps for r in results),
            "loss": statistics.median(r["loss"] for r in results),
        }
        for side, results in windows.items()
    }
    return {
        "model": "resnet (ResNet-18, small-input stem)",
        "input": "synthetic 3x32x32",
        "batch_size": 64,
        "warmup_steps": warmup,
        "steps": steps,
        "repeats": repeats,
        "sides": sides,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio["median"] <= TARGET_RATIO,
    }


def table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"steps: ResNet-18 on {result['input']}, batch {result['batch_size']}, "
        f"{result['steps']} timed steps after {result['warmup_steps']} warm-up "
        f"({result['repeats']} rounds of alternating fresh processes)",
        caption="Only the steps are timed: from the end of the last warm-up step to the end of the "
        "last step; the epoch's end (validation, checkpoints) is outside the window on both sides. "
        "Ratio: each round's sides back to back; median, min and max over the rounds",
    )
    for column in ("", "median", "min", "max", "notes"):
        table.add_column(column, justify="left" if column in ("", "notes") else "right")
    for side, label in LABELS.items():
        s = result["sides"][side]
        table.add_row(
            f"{label}, s",
            *(f"{s['window_s'][key]:.2f}" for key in ("median", "min", "max")),
            f"{s['ms_per_step']:.0f} ms/step; last loss {s['loss']:.3f}",
        )
    table.add_section()
    ratio = result["ratio"]
    table.add_row(
        f"practicum / hand loop (target <= {result['target_ratio']:.2f})",
        *(f"{ratio[key]:.3f}x" for key in ("median", "min", "max")),
        f"met: {mark(result['meets_target'])}",
    )
    return table
