"""The linear baseline beside the deep model: "is this a rabbit?"."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf, open_dict

from practicum.config import CONF_DIR


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


# features x examples a closed-form fit handles in seconds on a CPU; larger data trains a linear net
CLOSED_FORM_CELLS = 20_000_000


def train_linear_baseline(
    cfg: DictConfig, datamodule, model: str = "linear", max_epochs: int = 20
) -> dict[str, float]:
    """A linear model's train/val/test metrics on the same split, fit with its own settings, never
    the run's (a wrong learning rate must not make the baseline look bad too): scikit-learn's
    logistic regression when the features are in memory and fit, else the linear net trained with
    Adam at its usual learning rate."""
    splits = getattr(datamodule, "splits", None) or {}
    train = splits.get("train")
    if isinstance(train, tuple) and train[0].numel() <= CLOSED_FORM_CELLS:
        return logistic_regression(splits, int(cfg.data.num_classes), int(cfg.seed))
    return _trained_linear(cfg, datamodule, model, max_epochs)


def logistic_regression(splits: dict, num_classes: int, seed: int) -> dict[str, float]:
    """L2-regularized logistic regression (the features as the data module gives them), measured
    with the task's metric names: acc (micro), f1 (macro), loss (cross-entropy in nats)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    # threadpoolctl comes with scikit-learn (a dependency of every release since 0.23)
    from threadpoolctl import threadpool_limits

    def arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = splits[split]
        return x.reshape(len(x), -1).double().numpy(), y.numpy()

    # the products are small (features x classes): BLAS threads would only wait on each other
    # and on torch's, 30x slower on a 2-core machine (1 s instead of 0.03 s on digits)
    with threadpool_limits(limits=1, user_api="blas"):
        x, y = arrays("train")
        fitted = LogisticRegression(max_iter=2000, random_state=seed).fit(x, y)
        labels = list(range(num_classes))
        metrics: dict[str, float] = {}
        for split in ("train", "val", "test"):
            if split not in splits:
                continue
            xs, ys = arrays(split)
            probabilities = np.zeros((len(xs), num_classes))
            probabilities[:, fitted.classes_] = fitted.predict_proba(xs)
            predicted = probabilities.argmax(axis=1)
            metrics[f"{split}/acc"] = float(accuracy_score(ys, predicted))
            metrics[f"{split}/f1"] = float(
                f1_score(ys, predicted, average="macro", labels=labels, zero_division=0)
            )
            metrics[f"{split}/loss"] = float(
                log_loss(ys, np.clip(probabilities, 1e-12, 1), labels=labels)
            )
    return metrics


def _trained_linear(cfg: DictConfig, datamodule, model: str, max_epochs: int) -> dict[str, float]:
    import lightning.pytorch as pl

    from practicum.run.build import build_task, build_trainer
    from practicum.run.evaluate import evaluate_splits

    baseline_cfg = linear_baseline_config(cfg, model, max_epochs)
    with open_dict(baseline_cfg):
        # its own optimizer: Adam at its usual learning rate, no schedule
        baseline_cfg.optimizer = OmegaConf.create(
            {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3, "weight_decay": 0.0}
        )
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
