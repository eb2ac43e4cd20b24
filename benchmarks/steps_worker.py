"""Worker: a fixed number of ResNet-18 training steps on synthetic 3x32x32 images; run by steps.py.

    python benchmarks/steps_worker.py SIDE OUTPUT_DIR WARMUP STEPS [--profile FILE]

SIDE `practicum`: practicum's train path, as `python train.py model=resnet` builds it (its task
and build_trainer: checkpoints, epoch metrics, early stopping, lr monitor, progress bar, CSV log,
StepLosses, the mid-epoch checkpoints armed for a signal or their 30-minute clock), fed the
synthetic batches. `practicum_no_step_checkpoint`: the same without the mid-epoch checkpoints
(`callbacks.step_checkpoint=null`). `practicum_saving`: the same with a mid-epoch `last.ckpt`
every SAVE_EVERY_S seconds (`callbacks.step_checkpoint.every_s`), about one save every two steps
here, each written by the background writer. SIDE `by_hand`: a plain PyTorch loop over the same batches
with the same net (practicum.nets.torchvision_nets.ResNet, depth 18, the small-input stem), seed
and optimizer (Adam, the default config's lr and betas). Both time the same window: from the end
of the WARMUP-th step to the end of the last of the STEPS steps after it. The epoch's end (one
validation batch, the checkpoints) falls outside the window on both sides.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from common import compose_config, profiled, report

BATCH_SIZE = 64
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
SAVE_EVERY_S = 2.0
# the overrides of each practicum side
PRACTICUM_SIDES = {
    "practicum": [],
    "practicum_no_step_checkpoint": ["callbacks.step_checkpoint=null"],
    "practicum_saving": [f"callbacks.step_checkpoint.every_s={SAVE_EVERY_S}"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("side", choices=(*PRACTICUM_SIDES, "by_hand"))
    parser.add_argument("output_dir")
    parser.add_argument("warmup", type=int)
    parser.add_argument("steps", type=int)
    parser.add_argument("--profile", help="write a pyinstrument text profile of the window here")
    args = parser.parse_args()

    extra = PRACTICUM_SIDES.get(args.side, [])
    cfg = steps_config(args.output_dir, args.warmup + args.steps, extra)
    batches = synthetic_batches(cfg.seed, args.warmup + args.steps)
    if args.side in PRACTICUM_SIDES:
        result = practicum_steps(cfg, batches, args.warmup, args.profile)
    else:
        result = hand_steps(cfg, batches, args.warmup, args.profile)
    report(side=args.side, warmup=args.warmup, **result)


def steps_config(output_dir: str, total_steps: int, extra: list[str] | None = None) -> Any:
    from omegaconf import open_dict

    cfg = compose_config(
        output_dir,
        [
            "model=resnet",
            "model.net.depth=18",
            "trainer.accelerator=cpu",
            "trainer.max_epochs=1",
            f"+trainer.max_steps={total_steps}",
            f"data.batch_size={BATCH_SIZE}",
            "diagnosis.baseline_model=null",
            *(extra or []),
        ],
    )
    with open_dict(cfg):
        cfg.data.input_shape, cfg.data.num_classes = list(IMAGE_SHAPE), NUM_CLASSES
    return cfg


def synthetic_batches(seed: int, count: int) -> list[tuple[Any, Any]]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(BATCH_SIZE, *IMAGE_SHAPE, generator=generator),
            torch.randint(0, NUM_CLASSES, (BATCH_SIZE,), generator=generator),
        )
        for _ in range(count)
    ]


def practicum_steps(cfg, batches, warmup: int, profile: str | None) -> dict[str, Any]:
    import lightning.pytorch as pl

    from practicum.run.build import build_task, build_trainer
    from practicum.run.step_checkpoints import StepCheckpoint

    timed_hook()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    task = build_task(cfg)
    trainer = build_trainer(cfg)
    window = step_window(warmup, len(batches), profile)
    trainer.callbacks.append(window)
    # an iterable of ready batches, as the hand loop uses them (a list would read as many loaders)
    trainer.fit(task, train_dataloaders=Batches(batches), val_dataloaders=Batches(batches[:1]))
    saves = sum(
        callback.saves for callback in trainer.callbacks if isinstance(callback, StepCheckpoint)
    )
    return {
        "steps": window.timed_steps,
        "window_s": window.seconds,
        "loss": window.last_loss,
        "saves": saves,
        # the mid-epoch checkpoint's hook on the training thread, per step (its saves included)
        "hook_ms_per_step": 1000 * hook_time[0] / max(1, len(batches)),
    }


hook_time = [0.0]


def timed_hook() -> None:
    """StepCheckpoint.on_train_batch_end, with the time it takes added up in `hook_time`."""
    from practicum.run.step_checkpoints import StepCheckpoint

    hook = StepCheckpoint.on_train_batch_end

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return hook(self, *args, **kwargs)
        finally:
            hook_time[0] += time.perf_counter() - started

    StepCheckpoint.on_train_batch_end = timed


class Batches:
    """Ready-made batches, one pass per epoch."""

    def __init__(self, batches: list) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def step_window(warmup: int, total: int, profile: str | None) -> Any:
    """A callback that starts the clock at the end of step `warmup` and stops it at the end of
    step `total`."""
    from lightning.pytorch.callbacks import Callback

    class StepWindow(Callback):
        def __init__(self) -> None:
            self.started = 0.0
            self.seconds = 0.0
            self.timed_steps = 0
            self.last_loss = float("nan")
            self.profiling = profiled(profile)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            step = batch_idx + 1
            if step == warmup:
                self.profiling.__enter__()
                self.started = time.perf_counter()
            elif step == total:
                loss = outputs["loss"] if isinstance(outputs, dict) else outputs
                self.last_loss = float(loss)  # waits for the step, as the hand loop's .item() does
                self.seconds = time.perf_counter() - self.started
                self.profiling.__exit__(None, None, None)
                self.timed_steps = total - warmup

    return StepWindow()


def hand_steps(cfg, batches, warmup: int, profile: str | None) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from practicum.nets.torchvision_nets import ResNet

    # a plain PyTorch script never imports Lightning, which sets this variable (fit_by_hand.py)
    os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    torch.manual_seed(cfg.seed)
    net = ResNet(list(IMAGE_SHAPE), NUM_CLASSES, depth=18, small_input=True)
    opt = cfg.optimizer
    if opt._target_ != "torch.optim.Adam" or opt.weight_decay:
        raise SystemExit(f"the hand loop uses Adam without weight decay, the config {opt}")
    optimizer = torch.optim.Adam(net.parameters(), lr=opt.lr, betas=tuple(opt.betas))
    net.train()

    def step(x, y) -> torch.Tensor:
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    for x, y in batches[:warmup]:
        step(x, y)
    started = time.perf_counter()
    with profiled(profile):
        for x, y in batches[warmup:]:
            loss = step(x, y)
        last_loss = loss.item()
    return {
        "steps": len(batches) - warmup,
        "window_s": time.perf_counter() - started,
        "loss": last_loss,
    }


if __name__ == "__main__":
    main()
