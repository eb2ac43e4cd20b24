"""The linear baseline beside the deep model: "is this a rabbit?"."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


def linear_baseline_config(cfg: DictConfig, model: str, max_epochs: int) -> DictConfig:
    """The run's config with `model=<model>` (from conf/model/), its own epoch budget, and nothing written."""
    baseline = cfg.copy()
    with open_dict(baseline):
        baseline.model = OmegaConf.load(CONF_DIR / "model" / f"{model}.yaml")
        baseline.parts = {**(baseline.get("parts") or {}), "model": model}
        baseline.compile = False  # a linear model gains nothing from compiling
        baseline.trainer.max_epochs = max_epochs
        baseline.scheduler = OmegaConf.create(
            {"factory": None, "interval": "epoch", "monitor": None}
        )
    return baseline


def train_linear_baseline(
    cfg: DictConfig, datamodule, model: str = "linear", max_epochs: int = 20
) -> dict[str, float]:
    """Train the baseline briefly on the same split and return its train/val/test metrics (last epoch)."""
    import lightning.pytorch as pl

    from practicum.build import build_task, build_trainer
    from practicum.evaluate import evaluate_splits

    baseline_cfg = linear_baseline_config(cfg, model, max_epochs)
    # its own seed: the baseline comes out the same whatever ran before it (a resumed run too)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    task = build_task(baseline_cfg)
    trainer = build_trainer(baseline_cfg, quiet=True)
    trainer.fit(
        task,
        train_dataloaders=datamodule.train_dataloader(),
        val_dataloaders=datamodule.val_dataloader(),
    )
    return evaluate_splits(baseline_cfg, task, datamodule, ("train", "val", "test"), None)
