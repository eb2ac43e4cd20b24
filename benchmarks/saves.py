"""Section `saves`: the time a checkpoint save takes on the training thread. Lightning's stock
`TorchCheckpointIO`, practicum's synchronous `AtomicCheckpointIO` and its `BackgroundCheckpointIO`
(the default), on the digits CNN's checkpoint of the `fit` section and on a ResNet-18 with Adam's
state, 20 saves a side in one fresh process, sides rotating (saves_worker.py)."""

from __future__ import annotations

import tempfile
from typing import Any

from rich.table import Table

from common import BENCH_DIR, Settings, mark, run_worker, spread

SIDES = ("stock", "atomic", "background")
LABELS = {
    "stock": "Lightning's TorchCheckpointIO (no fsync)",
    "atomic": "AtomicCheckpointIO (durable, on the training thread)",
    "background": "BackgroundCheckpointIO (durable, written on a thread)",
}
CHECKPOINTS = {
    "digits_cnn": "digits CNN after one epoch of the fit section's fit",
    "resnet18_adam": "ResNet-18 state_dict + Adam state",
}


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    saves = settings.count(20, 5)
    # on the disk the runs write to (the system's temporary folder may be a RAM disk)
    (BENCH_DIR / "results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-saves-", dir=BENCH_DIR / "results") as tmp:
        raw = run_worker("saves_worker.py", tmp, str(saves), what="saves")
    result: dict[str, Any] = {"saves": saves, "checkpoints": {}}
    for name in CHECKPOINTS:
        measured = raw[name]
        sides = {side: spread(measured["ms"][side]) for side in SIDES}
        to_disk = spread(measured["background_to_disk_ms"])
        result["checkpoints"][name] = {
            "mb": measured["mb"],
            "ms": sides,
            "background_to_disk_ms": to_disk,
            "meets_target": sides["background"]["median"] <= sides["stock"]["median"],
        }
        log(
            f"saves {name}: "
            + ", ".join(f"{side} {sides[side]['median']:.1f} ms" for side in SIDES)
            + f"; background on disk after {to_disk['median']:.1f} ms"
        )
    return result


def table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"saves: ms on the training thread per checkpoint save ({result['saves']} saves a "
        "side, sides rotating, one process)",
        caption="Only the call to save_checkpoint is timed; a background save's write ends before "
        "the next save of any side (its time to disk: the row below it). Target: background save "
        "on the training thread <= stock save (median)",
    )
    for column in ("checkpoint", "save", "median", "min", "max", "target"):
        table.add_column(column, justify="left" if column in ("checkpoint", "save") else "right")
    for name, label in CHECKPOINTS.items():
        measured = result["checkpoints"][name]
        first = f"{label} ({measured['mb']:.2f} MB)"
        for side in SIDES:
            ms = measured["ms"][side]
            target = mark(measured["meets_target"]) if side == "background" else ""
            table.add_row(
                first if side == "stock" else "",
                LABELS[side],
                *(f"{ms[key]:.1f}" for key in ("median", "min", "max")),
                target,
            )
        to_disk = measured["background_to_disk_ms"]
        table.add_row(
            "",
            "  background: the save's write on disk after",
            *(f"{to_disk[key]:.1f}" for key in ("median", "min", "max")),
            "",
        )
        table.add_section()
    return table
