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
from steps_worker import SAVE_EVERY_S

TARGET_RATIO = 1.03
# the mid-epoch checkpoints armed (a signal, a 30-minute clock) against switched off
TARGET_ARMED = 1.01
SIDES = ("practicum", "by_hand", "practicum_no_step_checkpoint", "practicum_saving")
LABELS = {
    "practicum": "practicum (task + build_trainer, everything on)",
    "by_hand": "hand-written PyTorch loop",
    "practicum_no_step_checkpoint": "practicum without mid-epoch checkpoints",
    "practicum_saving": f"practicum, a mid-epoch last.ckpt every {SAVE_EVERY_S:g} s",
}


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    repeats = settings.count(3, 1)
    warmup, steps = settings.size(2, 1), settings.size(10, 2)
    windows: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="bench-steps-") as tmp:
        for i in range(repeats):
            order = SIDES[i % len(SIDES) :] + SIDES[: i % len(SIDES)]  # rotating
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

    def ratio_of(top: str, bottom: str) -> dict[str, float]:
        pairs = zip(windows[top], windows[bottom], strict=True)
        return spread([a["window_s"] / b["window_s"] for a, b in pairs])

    ratio = ratio_of("practicum", "by_hand")
    armed = ratio_of("practicum", "practicum_no_step_checkpoint")
    saving = ratio_of("practicum_saving", "practicum_no_step_checkpoint")
    saves = statistics.median(r.get("saves", 0) for r in windows["practicum_saving"])
    sides = {
        side: {
            "window_s": spread([r["window_s"] for r in results]),
            "ms_per_step": statistics.median(1000 * r["window_s"] / steps for r in results),
            "loss": statistics.median(r["loss"] for r in results),
            "hook_ms_per_step": statistics.median(r.get("hook_ms_per_step", 0) for r in results),
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
        "armed_ratio": armed,
        "target_armed": TARGET_ARMED,
        "meets_armed": armed["median"] <= TARGET_ARMED,
        "saving_ratio": saving,
        "saves_in_window": saves,
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
    if "armed_ratio" in result:
        armed = result["armed_ratio"]
        table.add_row(
            f"practicum / without mid-epoch checkpoints (target <= {result['target_armed']:.2f})",
            *(f"{armed[key]:.3f}x" for key in ("median", "min", "max")),
            f"met: {mark(result['meets_armed'])}; armed, no signal, no save in the window; its "
            f"hook {result['sides']['practicum']['hook_ms_per_step']:.4f} ms a step",
        )
        saving = result["saving_ratio"]
        table.add_row(
            "practicum saving mid-epoch / without",
            *(f"{saving[key]:.3f}x" for key in ("median", "min", "max")),
            f"{result['saves_in_window']:g} saves in the window (median); on the training "
            f"thread {result['sides']['practicum_saving']['hook_ms_per_step']:.1f} ms a step",
        )
    return table
