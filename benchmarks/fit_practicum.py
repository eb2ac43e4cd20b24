"""Worker: one fit along practicum's default training path, timed; run in a fresh process by fit.py.

    python benchmarks/fit_practicum.py OUTPUT_DIR EPOCHS [--profile PROFILE.txt] [KEY=VALUE ...]

Builds everything as `python train.py` does (default config: logging, rich progress bar,
checkpointing, CSV logger all on), then times `trainer.fit` alone: imports and building are not
part of the number. Its stdout is a file, not a TTY, so the rich bar does not redraw live.
"""

from __future__ import annotations

import argparse
import time

from common import fit_config, profiled, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("epochs", type=int)
    parser.add_argument("--profile", help="write a pyinstrument text profile of the fit here")
    parser.add_argument(
        "overrides", nargs="*", help="config overrides (KEY=VALUE) to compare against the default"
    )
    args = parser.parse_args()

    import lightning.pytorch as pl

    from practicum.config.validate import validate
    from practicum.run.build import build_datamodule, build_task, build_trainer

    cfg = fit_config(args.output_dir, args.epochs, args.overrides)
    validate(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    trainer = build_trainer(cfg)

    started = time.perf_counter()
    with profiled(args.profile):
        trainer.fit(task, datamodule=datamodule)
    fit_s = time.perf_counter() - started

    best = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    report(
        fit_s=fit_s,
        epochs=trainer.current_epoch,
        steps=trainer.global_step,
        val_acc=float(trainer.callback_metrics["val/acc"]),
        best_val_acc=float(best) if best is not None else None,
    )


if __name__ == "__main__":
    main()
