"""Section `throughput`: training samples/s of each model family on the digits data, batch 64.

Measured in this process, two ways: a full step through the task (`task.training_step`: loss and
metric updates, then backward and the optimizer step), and the bare net (forward, cross-entropy,
backward, step). The gap between them is what the task's bookkeeping costs per step.
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

FAMILIES = ("linear", "mlp", "cnn")
BATCH_SIZE = 64
WARMUP_STEPS = 30


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    import torch

    chunks = settings.count(5, 3)
    steps_per_chunk = settings.size(60, 30)
    models = {}
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        for family in FAMILIES:
            models[family] = measure_family(tmp, family, chunks, steps_per_chunk)
            log(f"throughput {family}: {models[family]['task_samples_per_s']:.0f} samples/s")
    return {
        "batch_size": BATCH_SIZE,
        "input": "digits 1x8x8 (flattened to 64 for linear and mlp)",
        "steps_measured": chunks * steps_per_chunk,
        "chunks": chunks,
        "torch_threads": torch.get_num_threads(),
        "models": models,
    }


def measure_family(tmp: str, family: str, chunks: int, steps_per_chunk: int) -> dict[str, Any]:
    import lightning.pytorch as pl
    import torch.nn.functional as F

    from practicum.build import build_datamodule, build_task

    cfg = compose_config(tmp, [f"model={family}", f"data.batch_size={BATCH_SIZE}"])
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg)
    batches = [b for b in datamodule.train_dataloader() if len(b[1]) == BATCH_SIZE]
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
        {"task": task_step, "net": net_step}, batches, chunks, steps_per_chunk
    )
    results: dict[str, Any] = {"params": sum(p.numel() for p in task.net.parameters())}
    for name, chunk_rates in rates.items():
        results[f"{name}_samples_per_s"] = statistics.median(chunk_rates)
        results[f"{name}_chunk_rates"] = [round(r, 1) for r in chunk_rates]
    results["task_ms_per_step"] = 1000 * BATCH_SIZE / results["task_samples_per_s"]
    return results


def interleaved_rates(
    steps: dict[str, Callable[[tuple, int], None]], batches: list, chunks: int, steps_per_chunk: int
) -> dict[str, list[float]]:
    """Samples/s of each step function over `chunks` timed chunks, taking turns chunk by chunk
    (so a change in machine load hits all of them alike), after a warm-up of each."""
    stream = cycle(enumerate(batches))
    for step in steps.values():
        for _ in range(WARMUP_STEPS):
            index, batch = next(stream)
            step(batch, index)
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(chunks):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(steps_per_chunk):
                index, batch = next(stream)
                step(batch, index)
            rates[name].append(steps_per_chunk * BATCH_SIZE / (time.perf_counter() - started))
    return rates


def table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"throughput: training samples/s, batch {result['batch_size']}, "
        f"{result['input']}, {result['torch_threads']} torch threads "
        f"(median of {result['chunks']} chunks, {result['steps_measured']} steps)",
        caption="task = task.training_step (loss + metric updates) + backward + Adam step; "
        "net = forward + cross-entropy + backward + Adam step",
    )
    for column in ("model", "params", "task samples/s", "ms/step", "net samples/s", "task / net"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for family, numbers in result["models"].items():
        table.add_row(
            family,
            f"{numbers['params']:,}",
            f"{numbers['task_samples_per_s']:,.0f}",
            f"{numbers['task_ms_per_step']:.2f}",
            f"{numbers['net_samples_per_s']:,.0f}",
            f"{numbers['task_samples_per_s'] / numbers['net_samples_per_s']:.2f}",
        )
    return table
