"""Worker: the same fit as fit_practicum.py, written by hand in plain PyTorch; run by fit.py.

    python benchmarks/fit_by_hand.py OUTPUT_DIR EPOCHS [--profile PROFILE.txt]

Same net, same train/val tensors (from practicum's datamodule), same seed, epochs, batch size,
optimizer and cosine schedule; validation after every epoch. Only the loop is timed.
"""

from __future__ import annotations

import argparse
import os
import time

from common import fit_config, profiled, report

# The default config, spelled out: the loop below must not depend on practicum to build its model.
NET = {
    "channels": [32, 64],
    "kernel_size": 3,
    "padding": "same",
    "batch_norm": True,
    "dropout": 0.25,
}
LR = 3e-3
BATCH_SIZE = 64
SEED = 42


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("epochs", type=int)
    parser.add_argument("--profile", help="write a pyinstrument text profile of the loop here")
    args = parser.parse_args()

    # A plain PyTorch script never imports Lightning, which sets this variable on import (and on a
    # CUDA build without a GPU it makes every optimizer step probe for the driver). Getting the
    # data through practicum imports Lightning, so put the variable back as it was.
    nvml_check = os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")
    cfg = fit_config(args.output_dir, args.epochs)
    check_same_settings(cfg)
    from practicum.run.build import build_datamodule

    if nvml_check is None:
        os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    else:
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = nvml_check

    import torch
    from torch import nn

    from practicum.nets.cnn import ConvNet

    torch.manual_seed(SEED)
    datamodule = build_datamodule(cfg)
    x_train, y_train = datamodule.splits["train"]
    x_val, y_val = datamodule.splits["val"]
    model = ConvNet(datamodule.input_shape, datamodule.num_classes, **NET)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(SEED)
    val_accs = []
    steps = 0

    started = time.perf_counter()
    with profiled(args.profile):
        for _epoch in range(args.epochs):
            model.train()
            train_loss = 0.0
            order = torch.randperm(len(y_train), generator=shuffle)
            for start in range(0, len(order), BATCH_SIZE):
                batch = order[start : start + BATCH_SIZE]
                x, y = x_train[batch], y_train[batch]
                loss = loss_fn(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                train_loss += loss.item() * len(y)
                steps += 1
            scheduler.step()

            model.eval()
            correct = 0
            with torch.no_grad():
                for start in range(0, len(y_val), BATCH_SIZE):
                    logits = model(x_val[start : start + BATCH_SIZE])
                    correct += (logits.argmax(1) == y_val[start : start + BATCH_SIZE]).sum().item()
            val_accs.append(correct / len(y_val))
    fit_s = time.perf_counter() - started

    report(
        fit_s=fit_s,
        epochs=args.epochs,
        steps=steps,
        val_acc=val_accs[-1],
        best_val_acc=max(val_accs),
        train_loss=train_loss / len(y_train),
    )


def check_same_settings(cfg) -> None:
    """Fail loudly if practicum's defaults moved away from what this loop hard-codes."""
    expected = {
        "model.net": {**NET, "_target_": "practicum.nets.cnn.ConvNet"},
        "optimizer": {"_target_": "torch.optim.Adam", "lr": LR, "weight_decay": 0.0},
        "data.batch_size": BATCH_SIZE,
        "seed": SEED,
        "scheduler.factory._target_": "torch.optim.lr_scheduler.CosineAnnealingLR",
    }
    from omegaconf import OmegaConf

    for key, want in expected.items():
        have = OmegaConf.select(cfg, key)
        if isinstance(want, dict):
            have = {
                k: OmegaConf.to_object(have[k]) if OmegaConf.is_config(have[k]) else have[k]
                for k in want
            }
        if have != want:
            raise SystemExit(
                f"practicum's default {key} is {have}, the hand-written loop uses {want}"
            )


if __name__ == "__main__":
    main()
