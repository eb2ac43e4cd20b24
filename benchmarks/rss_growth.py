"""Worker: a long default fit that samples its own RSS after every epoch; run by memory.py.

    python benchmarks/rss_growth.py OUTPUT_DIR EPOCHS

Same build as `python train.py` (every default callback and the CSV logger), no early stop.
"""

from __future__ import annotations

import argparse

from common import current_rss_mb, fit_config, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("epochs", type=int)
    args = parser.parse_args()

    import lightning.pytorch as pl

    from practicum.run.build import build_datamodule, build_task, build_trainer

    class RssSampler(pl.Callback):
        """RSS in MiB (total, anon, file) at the end of each training epoch, by epoch (1-based)."""

        def __init__(self) -> None:
            self.rss_mb: dict[int, dict[str, float]] = {}

        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.rss_mb[trainer.current_epoch + 1] = current_rss_mb()

    cfg = fit_config(args.output_dir, args.epochs)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    trainer = build_trainer(cfg)
    sampler = RssSampler()
    trainer.callbacks.append(sampler)
    trainer.fit(task, datamodule=datamodule)
    report(rss_mb=sampler.rss_mb, epochs=trainer.current_epoch)


if __name__ == "__main__":
    main()
