"""Predicted probabilities of every example by a model that never trained on it, for the label audit.

- validation and test: the trained model (the best checkpoint), one pass over each split;
- training examples in memory (tables, arrays, sequences, the bundled sets): K-fold cross-fitting
  of a cheap model on the features, the better of 15 nearest neighbours (standardized features)
  and an L2 logistic regression by out-of-fold accuracy on the given labels; the second is not
  fitted when the first already scores as well as the trained net does on validation. Nearest
  neighbours resist label noise where a linear fit bends towards it, and the linear fit wins where
  the classes are linear in many features. Cost: about 0.2 s for the 1,257 training digits; wide
  inputs are first reduced to 64 principal components;
- training images read from files, only with `diagnosis.audit_train_images=true`: the net itself,
  trained with the run's settings on K-1 folds and scored on the held-out fold (K trainings of
  (K-1)/K of the data: about K-1 times the run's own training).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

NEIGHBOURS = 15
COMPONENTS = 64  # inputs wider than this are reduced before the cheap models see them
WIDE = 256


def model_outputs(task: Any, loader: Any) -> np.ndarray:
    """The model's class probabilities on every batch of a loader, in order."""
    device = next(task.parameters()).device
    training = task.training
    task.eval()
    probs = []
    with torch.inference_mode():
        for batch in loader:
            probs.append(torch.softmax(task(_to(batch[0], device)).float(), dim=-1).cpu())
    task.train(training)
    return torch.cat(probs).double().numpy()


def input_signatures(loader: Any) -> tuple[np.ndarray, np.ndarray]:
    """Perceptual hashes and thumbnails of a loader's images (pixels, before normalization)."""
    from practicum.methodology.leakage import image_signatures

    found = [image_signatures(batch[0]) for batch in loader]
    return np.concatenate([h for h, _ in found]), np.concatenate([t for _, t in found])


def _to(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, list | tuple):
        return type(inputs)(_to(part, device) for part in inputs)
    return inputs


def cross_fitted(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    folds: int,
    seed: int,
    good_enough: float | None = None,
) -> tuple[np.ndarray, str]:
    """Out-of-fold probabilities of the better cheap model, and its name; the next model is not
    tried once one scores `good_enough` (the trained net's accuracy on unseen examples)."""
    from threadpoolctl import threadpool_limits

    x = x.reshape(len(x), -1).astype(np.float64)
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    # the products are small: BLAS threads would only wait on each other and on torch's
    with threadpool_limits(limits=1, user_api="blas"):
        if x.shape[1] > WIDE:
            from sklearn.decomposition import PCA

            x = PCA(COMPONENTS, svd_solver="randomized", random_state=seed).fit_transform(x)
        best: tuple[float, np.ndarray, str] | None = None
        for name, model in _cheap_models(len(y), folds, seed):
            probs = _out_of_fold(model, x, y, num_classes, folds, seed)
            accuracy = float((probs.argmax(axis=1) == y).mean())
            if best is None or accuracy > best[0]:
                best = (accuracy, probs, f"{folds}-fold cross-fitted {name}")
            if good_enough is not None and accuracy >= good_enough:
                break
    assert best is not None
    return best[1], best[2]


def _cheap_models(n: int, folds: int, seed: int) -> list[tuple[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    # nearest neighbours first: the cheaper of the two, and the one label noise bends less
    models: list[tuple[str, Any]] = []
    if n - n // folds > NEIGHBOURS:
        models.append((f"{NEIGHBOURS}-nearest neighbours", KNeighborsClassifier(NEIGHBOURS)))
    models.append(("logistic regression", LogisticRegression(max_iter=1000, random_state=seed)))
    return models


def folds_of(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, held-out) positions of each fold, stratified when every class has `folds` examples."""
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)
    if counts[counts > 0].min() >= folds:
        splitter: Any = StratifiedKFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _out_of_fold(
    model: Any, x: np.ndarray, y: np.ndarray, num_classes: int, folds: int, seed: int
) -> np.ndarray:
    from sklearn.base import clone

    probs = np.zeros((len(y), num_classes))
    for fit, held in folds_of(y, folds, seed):
        present = np.unique(y[fit])
        if len(present) < 2:  # a fold whose training part holds one class: that class, surely
            probs[np.ix_(held, present)] = 1.0
            continue
        fitted = clone(model).fit(x[fit], y[fit])
        # a class missing from a fold's training part gets probability 0
        probs[np.ix_(held, fitted.classes_)] = fitted.predict_proba(x[held])
    return probs


def cross_fitted_net(cfg: Any, datamodule: Any, folds: int) -> tuple[np.ndarray, str]:
    """Out-of-fold probabilities of the training images by the net itself, trained per fold."""
    import lightning.pytorch as pl

    from practicum.run.build import build_task, build_trainer

    y = datamodule.labels("train")
    probs = np.zeros((len(y), int(datamodule.num_classes)))
    for k, (fit, held) in enumerate(folds_of(y, folds, int(cfg.seed))):
        pl.seed_everything(int(cfg.seed) + k, workers=True, verbose=False)
        task = build_task(cfg)
        fit_loader, held_loader = datamodule.fold_loaders(fit, held)
        build_trainer(cfg, quiet=True).fit(task, train_dataloaders=fit_loader)
        probs[held] = model_outputs(task, held_loader)
    return probs, f"{folds}-fold cross-fitted net"
