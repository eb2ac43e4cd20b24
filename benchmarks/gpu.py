"""Section `gpu`: ResNet-18 training images/s, practicum's task + Trainer vs a hand-written loop.

    .venv/bin/python benchmarks/gpu.py           # on a CUDA GPU (the CPU path without one)
    .venv/bin/python benchmarks/gpu.py --cpu     # the CPU path: a few small steps, a smoke test

Both sides train the same net (`model=resnet`, depth 18, the CIFAR stem) with the same optimizer
on the same pinned DataLoader of random 3x32x32 images. On CUDA, practicum runs `trainer=gpu`
(bf16 mixed precision where the GPU supports it, else fp16; channels-last; pinned batches), and
the hand loop does the same by hand: `torch.autocast`, `memory_format=torch.channels_last`,
`non_blocking` copies (and a GradScaler under fp16). The CPU path runs `trainer=cpu` and fp32 on
both sides. Only steady steps are timed (after a warm-up, with the GPU synchronized at both ends),
in rounds that alternate the sides; the ratio practicum / hand loop of images/s is taken per round
(target >= 0.95 on a GPU; none on the CPU, whose few steps only show that the path runs).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

from rich.table import Table

from common import Settings, compose_config, mark, report, run_worker, spread

TARGET_RATIO = 0.95
IMAGE_SHAPE = (3, 32, 32)
CLASSES = 10
# (batch size, warm-up steps, timed steps, rounds) on each device
SIZES = {"cuda": (256, 20, 100, 5), "cpu": (8, 2, 3, 2)}


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    args = ["--rounds", "1"] if settings.quick else []
    if settings.repeats:
        args = ["--rounds", str(settings.repeats)]
    result = run_worker("gpu.py", "--report", *args, what="ResNet-18 rounds")
    log(f"gpu: {result['device']}, practicum / hand loop {result['ratio']['median']:.3f}")
    return result


def table(result: dict[str, Any]) -> Table:
    cuda = result["device_type"] == "cuda"
    table = Table(
        title=f"gpu: ResNet-18 training images/s on {result['device']}, batch "
        f"{result['batch_size']}, {result['precision']}"
        f"{', channels-last' if result['channels_last'] else ''} "
        f"({result['timed_steps']} timed steps per side, {result['rounds']} rounds alternating)",
        caption=None if cuda else "no CUDA GPU: the CPU path (fp32, a few steps), no target",
    )
    for column in ("side", "images/s (median)", "min", "max"):
        table.add_column(column, justify="left" if column == "side" else "right")
    for name in ("practicum", "hand_loop"):
        rates = result[f"{name}_images_per_s"]
        table.add_row(
            name.replace("_", " "),
            f"{rates['median']:.1f}",
            f"{rates['min']:.1f}",
            f"{rates['max']:.1f}",
        )
    ratio = result["ratio"]
    target = f" (target >= {TARGET_RATIO:.2f}: {mark(result['meets_target'])})" if cuda else ""
    table.add_row(
        f"practicum / hand loop{target}",
        f"{ratio['median']:.3f}",
        f"{ratio['min']:.3f}",
        f"{ratio['max']:.3f}",
        end_section=True,
    )
    return table


# -- the measurement, in its own process ---------------------------------------------------------


def measure(force_cpu: bool, rounds: int | None) -> dict[str, Any]:
    import lightning.pytorch as pl
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from practicum.platform.gpu import to_channels_last
    from practicum.run.build import build_task, build_trainer

    cuda = torch.cuda.is_available() and not force_cpu
    device = torch.device("cuda" if cuda else "cpu")
    batch_size, warmup, timed, default_rounds = SIZES[device.type]
    rounds = rounds or default_rounds
    steps = warmup + timed
    generator = torch.Generator().manual_seed(0)
    count = batch_size * steps
    dataset = TensorDataset(
        torch.randn(count, *IMAGE_SHAPE, generator=generator),
        torch.randint(0, CLASSES, (count,), generator=generator),
    )
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, pin_memory=cuda, drop_last=True
    )

    tmp = tempfile.mkdtemp(prefix="bench-gpu-")
    cfg = compose_config(
        tmp,
        [
            "model=resnet",
            "model.net.depth=18",
            f"trainer={'gpu' if cuda else 'cpu'}",
            "trainer.max_epochs=1",
            f"+trainer.limit_train_batches={steps}",
            "+trainer.limit_val_batches=1",
            "trainer.enable_model_summary=false",
            "callbacks.progress_bar=null",
            "++trainer.enable_progress_bar=false",
            f"data.batch_size={batch_size}",
        ],
    )
    cfg.data.input_shape, cfg.data.num_classes = list(IMAGE_SHAPE), CLASSES
    precision = build_trainer(cfg, quiet=True).precision

    def synchronize() -> None:
        if cuda:
            torch.cuda.synchronize()

    class StepTimer(pl.Callback):
        """Seconds from the start of step `warmup` to the end of the last step."""

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if batch_idx == warmup:
                synchronize()
                self.started = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if batch_idx == steps - 1:
                synchronize()
                self.seconds = time.perf_counter() - self.started

    def practicum_side() -> float:
        pl.seed_everything(0, verbose=False)
        task = build_task(cfg)
        trainer = build_trainer(cfg)
        timer = StepTimer()
        trainer.callbacks.append(timer)
        trainer.fit(task, train_dataloaders=loader, val_dataloaders=loader)
        return batch_size * timed / timer.seconds

    def hand_side() -> float:
        pl.seed_everything(0, verbose=False)
        task = build_task(cfg)
        net = task.net.to(device)
        if cuda:
            to_channels_last(net)
        optimizer = task.optimizer_factory([p for p in net.parameters() if p.requires_grad])
        dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
        scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
        net.train()
        started = 0.0
        for i, (x, y) in enumerate(loader):
            if i == warmup:
                synchronize()
                started = time.perf_counter()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        synchronize()
        return batch_size * timed / (time.perf_counter() - started)

    sides = {"practicum": practicum_side, "hand_loop": hand_side}
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(rounds):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for name in order:
            rates[name].append(sides[name]())
    ratios = [a / b for a, b in zip(rates["practicum"], rates["hand_loop"], strict=True)]
    return {
        "device": torch.cuda.get_device_name(device) if cuda else "CPU",
        "device_type": device.type,
        "precision": str(precision),
        "channels_last": cuda,
        "pinned_memory": cuda,
        "batch_size": batch_size,
        "warmup_steps": warmup,
        "timed_steps": timed,
        "rounds": rounds,
        "torch_threads": torch.get_num_threads(),
        "practicum_images_per_s": spread(rates["practicum"]),
        "hand_loop_images_per_s": spread(rates["hand_loop"]),
        "ratio": spread(ratios),
        "target_ratio": TARGET_RATIO,
        "meets_target": spread(ratios)["median"] >= TARGET_RATIO if cuda else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="the CPU path even where CUDA is")
    parser.add_argument("--rounds", type=int, help="rounds of both sides (default: by device)")
    parser.add_argument("--report", action="store_true", help="end with the result as JSON")
    args = parser.parse_args()
    result = measure(args.cpu, args.rounds)
    if args.report:
        report(**result)
    else:
        from rich.console import Console

        Console().print(table(result))


if __name__ == "__main__":
    main()
