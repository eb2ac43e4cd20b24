"""Section `throughput`: training samples/s of each model family at a small input size.

The tabular and small nets (linear, MLP, CNN) train on the digits data at batch 64; the image
families (ResNet-18, VGG-11 with batch norm, Inception-V3) on synthetic 3x32x32 batches at batch 32,
the CIFAR size, through the same small-input adaptations `python train.py model=<family>` uses
(Inception-V3 resizes its inputs to 75x75). Measured in this process, two ways: a full step through
the task (`task.training_step`: loss and metric updates, then backward and the optimizer step), and
the bare net (forward, cross-entropy, backward, step). The gap between them is what the task's
bookkeeping costs per step.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from itertools import cycle
from typing import Any

from rich.table import Table

from common import Settings, compose_config

# family -> (input, batch size, overrides that pick the net's size)
FAMILIES: dict[str, tuple[str, int, list[str]]] = {
    "linear": ("digits 1x8x8", 64, []),
    "mlp": ("digits 1x8x8", 64, []),
    "cnn": ("digits 1x8x8", 64, []),
    "resnet": ("synthetic 3x32x32", 32, ["model.net.depth=18"]),
    "vgg": ("synthetic 3x32x32", 32, ["model.net.depth=11"]),
    "inception": ("synthetic 3x32x32", 32, []),
}
IMAGE_SHAPE = (3, 32, 32)
WARMUP_STEPS = 30


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    import torch

    chunks = settings.count(5, 3)
    models = {}
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        for family, (source, batch_size, overrides) in FAMILIES.items():
            images = source.startswith("synthetic")
            # the image nets take 10-100x longer per step: fewer steps per timed chunk
            steps = settings.size(6, 3) if images else settings.size(60, 30)
            models[family] = measure_family(
                tmp, family, batch_size, overrides, images, chunks, steps
            )
            models[family].update(
                input=source, batch_size=batch_size, steps_measured=chunks * steps
            )
            log(f"throughput {family}: {models[family]['task_samples_per_s']:.0f} samples/s")
    return {"chunks": chunks, "torch_threads": torch.get_num_threads(), "models": models}


def measure_family(
    tmp: str,
    family: str,
    batch_size: int,
    overrides: list[str],
    images: bool,
    chunks: int,
    steps_per_chunk: int,
) -> dict[str, Any]:
    import lightning.pytorch as pl
    import torch
    import torch.nn.functional as F

    from practicum.run.build import build_datamodule, build_task

    cfg = compose_config(tmp, [f"model={family}", f"data.batch_size={batch_size}", *overrides])
    pl.seed_everything(cfg.seed, verbose=False)
    if images:
        # the net is built for CIFAR-sized inputs; the batches are random images and labels
        cfg.data.input_shape, cfg.data.num_classes = list(IMAGE_SHAPE), 10
        generator = torch.Generator().manual_seed(cfg.seed)
        batches = [
            (
                torch.randn(batch_size, *IMAGE_SHAPE, generator=generator),
                torch.randint(0, 10, (batch_size,), generator=generator),
            )
            for _ in range(8)
        ]
    else:
        datamodule = build_datamodule(cfg)
        batches = [b for b in datamodule.train_dataloader() if len(b[1]) == batch_size]
    task = build_task(cfg)
    task.train()
    optimizer = task.optimizer_factory(task.parameter_groups())

    def task_step(batch: tuple, index: int) -> None:
        loss = task.training_step(batch, index)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def net_step(batch: tuple, index: int) -> None:
        x, y = batch
        loss = F.cross_entropy(task.net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    rates = interleaved_rates(
        {"task": task_step, "net": net_step},
        batches,
        chunks,
        steps_per_chunk,
        warmup=3 if images else WARMUP_STEPS,
    )
    results: dict[str, Any] = {"params": sum(p.numel() for p in task.net.parameters())}
    for name, chunk_rates in rates.items():
        results[f"{name}_samples_per_s"] = statistics.median(chunk_rates)
        results[f"{name}_chunk_rates"] = [round(r, 1) for r in chunk_rates]
    results["task_ms_per_step"] = 1000 * batch_size / results["task_samples_per_s"]
    return results


def interleaved_rates(
    steps: dict[str, Callable[[tuple, int], None]],
    batches: list,
    chunks: int,
    steps_per_chunk: int,
    warmup: int = WARMUP_STEPS,
) -> dict[str, list[float]]:
    """Samples/s of each step function over `chunks` timed chunks, taking turns chunk by chunk
    (so a change in machine load hits all of them alike), after a warm-up of each."""
    stream = cycle(enumerate(batches))
    for step in steps.values():
        for _ in range(warmup):
            index, batch = next(stream)
            step(batch, index)
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(chunks):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(steps_per_chunk):
                index, batch = next(stream)
                step(batch, index)
            samples = sum(len(batches[0][1]) for _ in range(steps_per_chunk))
            rates[name].append(samples / (time.perf_counter() - started))
    return rates


def table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"throughput: training samples/s, {result['torch_threads']} torch threads "
        f"(median of {result['chunks']} timed chunks)",
        caption="task = task.training_step (loss + metric updates) + backward + Adam step; "
        "net = forward + cross-entropy + backward + Adam step",
    )
    columns = ("model", "input", "batch", "params", "task samples/s", "ms/step", "net samples/s")
    for column in (*columns, "task / net"):
        table.add_column(column, justify="left" if column in ("model", "input") else "right")
    for family, numbers in result["models"].items():
        table.add_row(
            family,
            numbers["input"],
            str(numbers["batch_size"]),
            f"{numbers['params']:,}",
            f"{numbers['task_samples_per_s']:,.0f}",
            f"{numbers['task_ms_per_step']:.2f}",
            f"{numbers['net_samples_per_s']:,.0f}",
            f"{numbers['task_samples_per_s'] / numbers['net_samples_per_s']:.2f}",
        )
    return table
