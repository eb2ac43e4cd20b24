"""Worker: the same fit with a bare Lightning Trainer and a minimal LightningModule; run by fit.py.

    python benchmarks/fit_lightning.py OUTPUT_DIR EPOCHS [--features NAME[,NAME]] [--profile FILE]

The reference point between the two other sides: what Lightning's loop costs by itself, with
no logger, checkpoints, progress bar, model summary or metrics. Same net, batches, seed, epochs,
optimizer and cosine schedule as fit_by_hand.py; validation accuracy counted the same way.

`--features` switches practicum's features on, one by one, on top of the bare fit, each built as
practicum builds it (from the default config): see FEATURES. fit_features.py times every feature
this way, in one process.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from common import fit_config, profiled, report
from fit_by_hand import LR, NET, SEED, check_same_settings

# what each feature adds to the bare fit, as practicum's default config builds it
FEATURES = {
    "checkpoint": "checkpoints every epoch: the best epoch and last.ckpt (two ModelCheckpoint)",
    "atomic_io": "the same checkpoints written durably by BackgroundCheckpointIO (serialized on "
    "the training thread; temp file, fsync, rename on a background writer thread)",
    "metrics": "epoch metrics: practicum's ClassificationTask (torchmetrics, self.log per epoch)",
    "early_stopping": "early stopping on the goal metric (GoalEarlyStopping)",
    "lr_monitor": "learning-rate monitor (LearningRateMonitor, per epoch)",
    "progress_bar": "rich progress bar (RichProgressBar)",
    "model_summary": "model summary table at the start (RichModelSummary)",
    "csv_logger": "CSV log: metrics.csv and hparams.yaml (RunCSVLogger)",
    "step_losses": "per-step training losses for the diagnosis (StepLosses)",
}
# features whose callback watches a logged metric (the bare module then logs val/acc, one value
# per epoch, as the task does)
MONITORING = {"checkpoint", "atomic_io", "early_stopping"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("epochs", type=int)
    parser.add_argument("--features", default="", help=f"comma-separated: {', '.join(FEATURES)}")
    parser.add_argument("--profile", help="write a pyinstrument text profile of the fit here")
    args = parser.parse_args()
    features = parse_features(args.features)

    prepare()
    cfg = fit_config(args.output_dir, args.epochs)
    check_same_settings(cfg)
    datamodule = load_data(cfg)
    result = fit(cfg, datamodule, features, args.output_dir, args.epochs, args.profile)
    report(**result)


def parse_features(text: str) -> set[str]:
    features = {name.strip() for name in text.split(",") if name.strip()}
    if features == {"all"}:
        return set(FEATURES)
    unknown = features - set(FEATURES)
    if unknown:
        raise SystemExit(
            f"unknown feature {', '.join(sorted(unknown))}: choose from {', '.join(FEATURES)}"
        )
    return features


def prepare() -> None:
    """As in the other two sides: no NVIDIA driver probe on every optimizer step (fit_by_hand.py)."""
    import lightning.pytorch  # noqa: F401  (sets the variable on import)
    import torch

    if not torch.cuda.is_available():
        os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)


def load_data(cfg) -> Any:
    from practicum.run.build import build_datamodule

    return build_datamodule(cfg)


def fit(
    cfg, datamodule, features: set[str], output_dir: str, epochs: int, profile: str | None = None
) -> dict[str, Any]:
    """One timed `trainer.fit` of the bare module (or practicum's task with `metrics`) with
    `features` on; the module and Trainer are built before the clock starts."""
    import lightning.pytorch as pl
    import torch
    from omegaconf import open_dict

    from practicum.config.trust import instantiate
    from practicum.methodology.callbacks import StepLosses
    from practicum.run.build import build_loggers, build_task
    from practicum.run.checkpoints import BackgroundCheckpointIO
    from practicum.run.lightning_output import quiet_lightning

    quiet_lightning(output_dir)
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
    torch.manual_seed(SEED)
    if "metrics" in features:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        model = build_task(cfg)
    else:
        model = minimal_module(datamodule, epochs, log_val_acc=bool(features & MONITORING))

    callbacks: list[Any] = []
    if features & {"checkpoint", "atomic_io"}:
        callbacks += [instantiate(cfg.callbacks.model_checkpoint)]
        callbacks += [instantiate(cfg.callbacks.last_checkpoint)]
    if "early_stopping" in features:
        callbacks.append(instantiate(cfg.callbacks.early_stopping))
    if "lr_monitor" in features:
        callbacks.append(instantiate(cfg.callbacks.lr_monitor))
    if "progress_bar" in features:
        callbacks.append(instantiate(cfg.callbacks.progress_bar))
    if "step_losses" in features:
        callbacks.append(StepLosses())
    logger: Any = False
    if "csv_logger" in features:
        logger = build_loggers(cfg)
    elif "lr_monitor" in features:
        logger = discarding_logger()  # the monitor refuses to run without a logger
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator=cfg.trainer.accelerator,
        logger=logger,
        callbacks=callbacks,
        plugins=[BackgroundCheckpointIO()] if "atomic_io" in features else None,
        enable_checkpointing=bool(features & {"checkpoint", "atomic_io"}),
        enable_progress_bar="progress_bar" in features,
        enable_model_summary="model_summary" in features,
        num_sanity_val_steps=0,
        default_root_dir=output_dir,
    )

    started = time.perf_counter()
    with profiled(profile):
        trainer.fit(model, datamodule=datamodule)
    fit_s = time.perf_counter() - started

    if "metrics" in features:
        val_acc = float(trainer.callback_metrics["val/acc"])
    else:
        val_acc = model.val_accs[-1]
    return {
        "features": sorted(features),
        "fit_s": fit_s,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "val_acc": val_acc,
        "best_val_acc": max(model.val_accs) if hasattr(model, "val_accs") else val_acc,
    }


def discarding_logger() -> Any:
    """A logger that drops what it is given: the lr monitor's cost without a CSV file's."""
    from lightning.pytorch.loggers import Logger

    class Discard(Logger):
        name = "discard"
        version = "0"

        def log_metrics(self, metrics, step=None) -> None:
            pass

        def log_hyperparams(self, params, *args, **kwargs) -> None:
            pass

    return Discard()


def minimal_module(datamodule, epochs: int, log_val_acc: bool = False) -> Any:
    """The net with a loss, Adam, the cosine schedule and validation accuracy counted by hand."""
    import lightning.pytorch as pl
    import torch
    from torch import nn

    from practicum.nets.cnn import ConvNet

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
            if log_val_acc:  # what a monitoring callback watches
                self.log("val/acc", self.val_accs[-1])

        def configure_optimizers(self):
            optimizer = torch.optim.Adam(self.parameters(), lr=LR)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
            return {"optimizer": optimizer, "lr_scheduler": scheduler}

    return Minimal()


if __name__ == "__main__":
    main()
