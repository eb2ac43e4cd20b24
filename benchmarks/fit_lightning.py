"""Worker: the same fit with a bare Lightning Trainer and a minimal LightningModule; run by fit.py.

    python benchmarks/fit_lightning.py OUTPUT_DIR EPOCHS [--profile PROFILE.txt]

The reference point between the two other sides: what Lightning's loop costs by itself, with
no logger, checkpoints, progress bar, model summary or metrics. Same net, batches, seed, epochs,
optimizer and cosine schedule as fit_by_hand.py; validation accuracy counted the same way.
"""

from __future__ import annotations

import argparse
import os
import time

from common import fit_config, profiled, report
from fit_by_hand import LR, NET, SEED, check_same_settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("epochs", type=int)
    parser.add_argument("--profile", help="write a pyinstrument text profile of the fit here")
    args = parser.parse_args()

    import lightning.pytorch as pl
    import torch
    from torch import nn

    from practicum.build import build_datamodule
    from practicum.nets.cnn import ConvNet

    # as in the other two sides: no NVIDIA driver probe on every optimizer step (see fit_by_hand.py)
    if not torch.cuda.is_available():
        os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)

    cfg = fit_config(args.output_dir, args.epochs)
    check_same_settings(cfg)
    torch.manual_seed(SEED)
    datamodule = build_datamodule(cfg)

    class Minimal(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = ConvNet(datamodule.input_shape, datamodule.num_classes, **NET)
            self.loss_fn = nn.CrossEntropyLoss()
            self.correct = 0
            self.val_accs: list[float] = []

        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.loss_fn(self.net(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.correct += (self.net(x).argmax(1) == y).sum().item()

        def on_validation_epoch_end(self) -> None:
            self.val_accs.append(self.correct / len(datamodule.splits["val"][1]))
            self.correct = 0

        def configure_optimizers(self):
            optimizer = torch.optim.Adam(self.parameters(), lr=LR)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
            return {"optimizer": optimizer, "lr_scheduler": scheduler}

    model = Minimal()
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator=cfg.trainer.accelerator,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=args.output_dir,
    )

    started = time.perf_counter()
    with profiled(args.profile):
        trainer.fit(model, datamodule=datamodule)
    fit_s = time.perf_counter() - started

    report(
        fit_s=fit_s,
        epochs=trainer.current_epoch,
        steps=trainer.global_step,
        val_acc=model.val_accs[-1],
        best_val_acc=max(model.val_accs),
    )


if __name__ == "__main__":
    main()
