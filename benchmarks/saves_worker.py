"""Worker: the time a checkpoint save takes on the training thread; run by saves.py.

    python benchmarks/saves_worker.py OUTPUT_DIR SAVES [--profile FILE]

Three ways to write the same checkpoint to a file under OUTPUT_DIR, SAVES times each after one
untimed round, the sides in rotating order: Lightning's stock `TorchCheckpointIO` (serialized into
memory, written to the system's temporary folder, moved into place; no fsync), practicum's
`AtomicCheckpointIO` (the durable write on the training thread: a temporary file beside the target,
fsync, rename, fsync of the folder) and `BackgroundCheckpointIO` (serialized into memory on the
training thread, the same durable write on its writer thread). Only the call to `save_checkpoint`
is timed. After a background save the worker waits for its write before the next save of any side
(untimed: that wait is its time to disk), so no side's write runs during another side's timing, as
when saves are an epoch apart.

Two checkpoints: the digits CNN's, written by `trainer.save_checkpoint` after one epoch of the
`fit` section's fit (practicum's task and build_trainer, every callback on), and a ResNet-18's
(the `steps` section's net) state_dict with Adam's state after one step.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from common import fit_config, profiled, report

SIDES = ("stock", "atomic", "background")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("saves", type=int)
    parser.add_argument("--profile", help="write a pyinstrument text profile of the saves here")
    args = parser.parse_args()
    output = Path(args.output_dir)
    checkpoints = {
        "digits_cnn": digits_checkpoint(output / "fit"),
        "resnet18_adam": resnet_checkpoint(),
    }
    result: dict[str, Any] = {}
    with profiled(args.profile):
        for name, checkpoint in checkpoints.items():
            result[name] = time_saves(checkpoint, output / name, args.saves)
    report(saves=args.saves, **result)


def digits_checkpoint(output_dir: Path) -> dict[str, Any]:
    """The `fit` section's digits CNN after one epoch, as ModelCheckpoint writes it."""
    import torch

    from practicum.run.build import build_datamodule, build_task, build_trainer

    cfg = fit_config(output_dir, 1)
    trainer = build_trainer(cfg)
    trainer.fit(build_task(cfg), datamodule=build_datamodule(cfg))
    path = output_dir / "saved.ckpt"
    trainer.save_checkpoint(path)
    trainer.strategy.checkpoint_io.teardown()  # the file is on disk
    return torch.load(path, map_location="cpu", weights_only=False)


def resnet_checkpoint() -> dict[str, Any]:
    """ResNet-18 (small-input stem, 10 classes) and Adam's state after one step on random images."""
    import torch

    from practicum.nets.torchvision_nets import ResNet

    torch.manual_seed(0)
    net = ResNet([3, 32, 32], 10, depth=18, small_input=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    torch.nn.functional.cross_entropy(net(images), labels).backward()
    optimizer.step()
    return {
        "epoch": 0,
        "global_step": 1,
        "state_dict": net.state_dict(),
        "optimizer_states": [optimizer.state_dict()],
    }


def time_saves(checkpoint: dict[str, Any], folder: Path, saves: int) -> dict[str, Any]:
    import io

    import torch
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    from practicum.run.checkpoints import AtomicCheckpointIO, BackgroundCheckpointIO

    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    writers = {
        "stock": TorchCheckpointIO(),
        "atomic": AtomicCheckpointIO(),
        "background": BackgroundCheckpointIO(),
    }
    ms: dict[str, list[float]] = {side: [] for side in SIDES}
    to_disk_ms: list[float] = []
    for i in range(saves + 1):  # round 0 is a warm-up: folders made, files there to replace
        order = SIDES[i % len(SIDES) :] + SIDES[: i % len(SIDES)]
        for side in order:
            path = folder / side / "last.ckpt"
            started = time.perf_counter()
            writers[side].save_checkpoint(checkpoint, path)
            saved = time.perf_counter() - started
            if side == "background":
                writers[side].wait()
                written = time.perf_counter() - started
                if i:
                    to_disk_ms.append(1000 * written)
            if i:
                ms[side].append(1000 * saved)
    writers["background"].teardown()
    for side in SIDES:
        loaded = torch.load(folder / side / "last.ckpt", map_location="cpu", weights_only=False)
        if loaded.keys() != checkpoint.keys():
            raise RuntimeError(f"{side}: the file read back is not the checkpoint saved")
    return {"mb": len(buffer.getbuffer()) / 2**20, "ms": ms, "background_to_disk_ms": to_disk_ms}


if __name__ == "__main__":
    main()
