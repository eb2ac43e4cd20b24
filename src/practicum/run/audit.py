"""The data audit of a trained classifier, after its evaluation (methodology/data_audit.py decides
what the findings mean; this module measures them and writes the files):

- labels: confident learning (methodology/label_audit.py) on out-of-sample probabilities of every
  split (run/out_of_sample.py) -> label_issues.csv (`split,origin,given,suggested,score`, most
  suspicious first; score: the probability of the given label), label_issues.png for images;
- leakage: validation and test examples with a (near) copy in train (methodology/leakage.py)
  -> duplicates.csv, and the scores with those examples left out;
- classes: the training shares, and what predicting the majority class scores;
- the worst mistakes on validation: confusion.png, worst_val.csv, worst_val.png for images.

`diagnosis.audit=false` switches it off; what a data module cannot give is skipped with its reason.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from practicum.methodology.data_audit import Audit
from practicum.methodology.label_audit import find_label_issues
from practicum.methodology.leakage import exact_matches, image_matches, table_matches
from practicum.methodology.mistakes import confusion_picture, gallery
from practicum.platform.files import write_text
from practicum.run.out_of_sample import (
    cross_fitted,
    cross_fitted_net,
    input_signatures,
    model_outputs,
)

SPLITS = ("train", "val", "test")
GALLERY = 12  # examples in each picture
WORST = 50  # rows of worst_val.csv
MIN_PER_CLASS = 10  # training examples per class the cross-fitted scores need
SHARES = 100  # classes whose training share summary.json lists (the largest)


def audit_run(
    cfg: DictConfig, task: Any, datamodule: Any, metrics: dict[str, float], title: str
) -> Audit | None:
    """Audit a classifier's data after training; None when switched off or not a classifier."""
    options = cfg.get("diagnosis") or {}
    if not options.get("audit", True) or getattr(task, "problem", None) != "classification":
        return None
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    try:
        labels = {s: np.asarray(datamodule.labels(s), dtype=np.int64) for s in SPLITS}
    except (NotImplementedError, AttributeError, KeyError):
        return Audit(skipped=[f"{type(datamodule).__name__} gives no labels per example"])
    audit = Audit(audited={})
    rule = getattr(datamodule, "duplicate_rule", None)
    with whole_splits(datamodule):
        probs = {s: model_outputs(task, datamodule.loader(s)) for s in ("val", "test")}
    for split, found in probs.items():
        if len(found) != len(labels[split]):
            return Audit(
                skipped=[
                    f"{type(datamodule).__name__}.loader({split!r}) gave {len(found)} examples "
                    f"and labels({split!r}) {len(labels[split])}: they must be the same examples"
                ]
            )
    val_accuracy = float((probs["val"].argmax(axis=1) == labels["val"]).mean())
    train = _train_probabilities(cfg, datamodule, labels["train"], options, audit, val_accuracy)
    if train is not None:
        probs["train"] = train
    names = _class_names(datamodule, probs["val"].shape[1])
    _label_issues(datamodule, labels, probs, names, output_dir, title, audit)
    _duplicates(datamodule, rule, labels, probs, output_dir, audit, task)
    _classes(labels, names, audit, task)
    _worst_mistakes(datamodule, labels["val"], probs["val"], names, output_dir, title, audit)
    audit.seconds = round(time.perf_counter() - started, 3)
    return audit


@contextmanager
def whole_splits(datamodule: Any) -> Iterator[None]:
    """Loaders of every example: under DDP a data module's loaders give each rank its shard, and
    the audit (on rank zero) reads them all."""
    trainer = getattr(datamodule, "trainer", None)
    datamodule.trainer = None
    try:
        yield
    finally:
        datamodule.trainer = trainer


def _train_probabilities(
    cfg: DictConfig, datamodule: Any, y: np.ndarray, options: Any, audit: Audit, target: float
) -> np.ndarray | None:
    folds, seed = int(options.get("audit_folds", 5)), int(cfg.seed)
    num_classes = int(datamodule.num_classes)
    if len(y) < MIN_PER_CLASS * num_classes:
        audit.skipped.append(
            f"the training labels ({len(y)} examples for {num_classes} classes: fewer than "
            f"{MIN_PER_CLASS} per class are too few to score each label by a model that never "
            "saw it, so wrong labels cannot be told from an unlearned class)"
        )
        return None
    if hasattr(datamodule, "raw_features"):
        probs, audit.train_labels = cross_fitted(
            datamodule.raw_features("train"), y, num_classes, folds, seed, good_enough=target
        )
        return probs
    if hasattr(datamodule, "fold_loaders") and options.get("audit_train_images"):
        probs, audit.train_labels = cross_fitted_net(cfg, datamodule, folds)
        return probs
    if hasattr(datamodule, "fold_loaders"):
        audit.skipped.append(
            "the training labels of image files (diagnosis.audit_train_images=true audits them "
            "by cross-fitting the net, about "
            f"{folds - 1} more trainings)"
        )
    else:
        audit.skipped.append(f"the training labels ({type(datamodule).__name__} is not in memory)")
    return None


def _class_names(datamodule: Any, count: int) -> list[str]:
    names = list(getattr(datamodule, "class_names", None) or [])
    return [str(n) for n in names] if len(names) == count else [str(i) for i in range(count)]


def _origins(datamodule: Any, split: str, count: int, audit: Audit) -> list[str] | None:
    try:
        found = list(datamodule.origins(split))
    except NotImplementedError as exc:
        if str(exc) not in audit.skipped:
            audit.skipped.append(str(exc))
        return None
    if len(found) != count:
        audit.skipped.append(
            f"{type(datamodule).__name__}.origins({split!r}) names {len(found)} examples for "
            f"{count}: return one origin per example"
        )
        return None
    return found


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _label_issues(datamodule, labels, probs, names, output_dir, title, audit) -> None:
    rows, flagged, total, shown, named = [], 0, 0, [], {}
    for split in SPLITS:
        if split not in probs:
            continue
        issues = find_label_issues(labels[split], probs[split])
        origins = named[split] = _origins(datamodule, split, len(labels[split]), audit)
        if origins is None:  # no label_issues.csv without origins, nor half of its numbers
            audit.audited.clear()
            audit.label_noise_rates.clear()
            return
        audit.audited[split] = issues.count
        audit.label_noise_rates[split] = round(len(issues.indices) / max(issues.count, 1), 6)
        flagged, total = flagged + len(issues.indices), total + issues.count
        for i, suggested, score in zip(issues.indices, issues.suggested, issues.score, strict=True):
            given = names[labels[split][i]]
            rows.append([split, origins[i], given, names[suggested], f"{score:.4f}"])
            shown.append((float(score), split, int(i), given, names[suggested]))
    audit.label_issues = flagged
    audit.label_noise_rate = round(flagged / total, 6) if total else None
    header = ["split", "origin", "given", "suggested", "score"]
    write_text(output_dir / "label_issues.csv", _csv(header, rows))
    audit.files.append("label_issues.csv")
    if shown and getattr(datamodule, "takes_images", False):
        shown.sort()
        picked = shown[:GALLERY]
        images = [datamodule.example(split, i) for _, split, i, _, _ in picked]
        captions = [f"{s} {named[s][i]}\ngiven {g}, looks {sug}\np={p:.2f}"
                    for p, s, i, g, sug in picked]  # fmt: skip
        gallery(images, captions, output_dir / "label_issues.png",
                f"{title}\nLabels that look wrong, most suspicious first")  # fmt: skip
        audit.files.append("label_issues.png")


def _duplicates(datamodule, rule, labels, probs, output_dir, audit, task) -> None:
    if rule is None:
        audit.skipped.append(f"duplicates across splits ({type(datamodule).__name__} has no rule)")
        return
    if rule == "image":  # image files: their loaders shard only inside a Trainer
        train = input_signatures(datamodule.pixel_loader("train"))
        found = {
            s: image_matches(train, input_signatures(datamodule.pixel_loader(s)))
            for s in ("val", "test")
        }
    else:
        match = exact_matches if rule == "exact" else table_matches
        train_x = datamodule.raw_features("train")
        found = {s: match(train_x, datamodule.raw_features(s)) for s in ("val", "test")}
    audit.duplicates = {s: int((m >= 0).sum()) for s, m in found.items()}
    if not any(audit.duplicates.values()):
        return
    kept: dict[str, float] = {}
    for split, matches in found.items():
        keep = matches < 0
        kept.update(split_scores(split, labels[split][keep], probs[split][keep], task))
    audit.without_duplicates = kept
    rows = []
    train_origins = _origins(datamodule, "train", len(labels["train"]), audit)
    for split, matches in found.items():
        origins = _origins(datamodule, split, len(matches), audit)
        if origins is None or train_origins is None:
            return
        rows += [[split, origins[i], train_origins[m]] for i, m in enumerate(matches) if m >= 0]
    write_text(output_dir / "duplicates.csv", _csv(["split", "origin", "train_origin"], rows))
    audit.files.append("duplicates.csv")


def split_scores(split: str, y: np.ndarray, probs: np.ndarray, task: Any) -> dict[str, float]:
    """acc, macro F1 (over the classes present or predicted, as torchmetrics averages it) and,
    for a cross-entropy model, the loss of one split's examples."""
    if not len(y):
        return {}
    predicted = probs.argmax(axis=1)
    k = probs.shape[1]
    hits = np.bincount(y[predicted == y], minlength=k)
    both = np.bincount(y, minlength=k) + np.bincount(predicted, minlength=k)
    present = both > 0
    scores = {
        f"{split}/acc": float((predicted == y).mean()),
        f"{split}/f1": float((2 * hits[present] / both[present]).mean()),
    }
    if _cross_entropy(task):
        chosen = np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)
        scores[f"{split}/loss"] = float(-np.log(chosen).mean())
    return scores


def _cross_entropy(task: Any) -> bool:
    hparams = getattr(task, "hparams", {}) or {}
    return hparams.get("loss", "cross_entropy") == "cross_entropy"


def _classes(labels, names, audit, task) -> None:
    counts = np.bincount(labels["train"], minlength=len(names))
    shares = counts / max(counts.sum(), 1)
    # the largest SHARES classes: summary.json stays small with 10,000 classes
    largest = np.argsort(-shares, kind="stable")[:SHARES]
    audit.class_shares = {names[i]: round(float(shares[i]), 6) for i in largest}
    majority = int(counts.argmax())
    audit.majority_class = names[majority]
    prior = np.clip(shares, 1e-12, 1.0)  # the training shares as a constant prediction
    scores: dict[str, float] = {}
    for split in ("val", "test"):
        y = labels[split]
        constant = np.zeros((len(y), len(names)))
        constant[:, majority] = 1.0
        found = split_scores(split, y, constant, None)
        if _cross_entropy(task) and len(y):
            found[f"{split}/loss"] = float(-np.log(prior[y]).mean())
        scores.update(found)
    audit.majority = scores


def _worst_mistakes(datamodule, y, probs, names, output_dir, title, audit) -> None:
    predicted = probs.argmax(axis=1)
    confusion_picture(y, predicted, names, output_dir / "confusion.png", title)
    audit.files.append("confusion.png")
    losses = -np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))
    worst = np.argsort(-losses, kind="stable")[:WORST]
    origins = _origins(datamodule, "val", len(y), audit)
    if origins is None:
        return
    rows = [[origins[i], names[y[i]], names[predicted[i]], f"{losses[i]:.4f}"] for i in worst]
    write_text(output_dir / "worst_val.csv", _csv(["origin", "given", "predicted", "loss"], rows))
    audit.files.append("worst_val.csv")
    if getattr(datamodule, "takes_images", False) and len(worst):
        shown = worst[:GALLERY]
        captions = [f"{origins[i]}\ngiven {names[y[i]]}, predicted {names[predicted[i]]}\n"
                    f"loss {losses[i]:.2f}" for i in shown]  # fmt: skip
        gallery([datamodule.example("val", int(i)) for i in shown], captions,
                output_dir / "worst_val.png",
                f"{title}\nThe validation examples with the highest loss")  # fmt: skip
        audit.files.append("worst_val.png")
