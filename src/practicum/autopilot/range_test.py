"""The range test remedy (`tune=lr`): practicum's learning-rate range test on the best step's
config; its suggestion becomes the change `optimizer.lr=<lr>` when it is sane and differs."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console

from practicum.errors import UserError

# a range test's suggestion outside this is not applied (Lightning's lr_find once gave 1.7e-6)
SANE_LR = (1e-5, 1.0)


def suggested_lr(cfg: DictConfig, folder: Path, number: int, console: Console) -> float | None:
    """Run the test before step `number` (lr_range_NN.png/.json in `folder`); its suggestion, or
    None (and a line on the terminal) when it is not run, not sane, or agrees with the lr."""
    import lightning.pytorch as pl

    from practicum.config import TuneConfig
    from practicum.methodology.lr_range import lr_range_test
    from practicum.platform.files import write_json
    from practicum.run.build import build_datamodule, build_task

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    try:
        # the data first: it fills in the `auto` sizes (input_shape, num_classes) the task reads
        datamodule = build_datamodule(cfg)
        result = lr_range_test(
            build_task(cfg), datamodule, seed=int(cfg.seed), **TuneConfig().test_kwargs()
        )
    except UserError as exc:  # e.g. data the test cannot read in memory
        console.print(f"         range test not run: {exc}", soft_wrap=True)
        return None
    name = f"lr_range_{number:02d}"
    result.save_plot(folder / f"{name}.png", f"range test before step {number}")
    write_json(folder / f"{name}.json", result.as_dict())
    lr, current = float(result.suggestion), float(cfg.optimizer.lr)
    if not (math.isfinite(lr) and SANE_LR[0] <= lr <= SANE_LR[1]):
        console.print(
            f"         range test suggests {lr:.2g}, outside {SANE_LR[0]:g}..{SANE_LR[1]:g}: "
            "not applied",
            soft_wrap=True,
        )
        return None
    if abs(math.log10(lr / current)) < 0.2:
        console.print(f"         range test agrees with the lr ({current:g})")
        return None
    return lr
