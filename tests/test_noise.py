"""Standard errors of the goal metric, measured in the evaluation after fit: each task family on real
short runs, checked against values recomputed from the best checkpoint, and the diagnosis that
weighs a val/test gap against them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.nn.functional import binary_cross_entropy_with_logits, cross_entropy

from practicum.run.build import build_datamodule, build_task
from practicum.run.evaluate import evaluate_splits, load_run_config
from practicum.tasks.classification import classification_errors, macro_f1
from practicum.tasks.noise import bootstrap_errors
from practicum.tasks.segmentation import mean_iou

from conftest import train

NO_BASELINE = "diagnosis.baseline_model=null"
# digits with small val and test splits (90 images each): their noise is large
SMALL_SPLITS = ["data.val_fraction=0.05", "data.test_fraction=0.05", "trainer.max_epochs=2"]


def goal_errors(summary: dict) -> dict[str, float]:
    """The goal metric's standard error on val and test, as summary.json holds them."""
    errors = summary["standard_errors"]
    for split in ("val", "test"):
        assert math.isfinite(errors[split]) and errors[split] > 0, errors
    return errors


def from_checkpoint(summary: dict):
    """The best checkpoint's config, data and task, rebuilt as eval.py does."""
    ckpt = summary["best_checkpoint"]
    cfg = load_run_config(ckpt)
    datamodule = build_datamodule(cfg)
    datamodule.setup("test")
    task = build_task(cfg, with_optimizer=False)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    task.load_state_dict(state)
    return cfg, datamodule, task.eval()


def plug_in_error(values: torch.Tensor) -> float:
    values = values.double()
    return float(values.std(correction=0) / math.sqrt(len(values)))


# -- classification -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def accuracy_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("acc"), ["trainer.max_epochs=2", NO_BASELINE])


def test_accuracy_error_is_the_binomial_error_of_the_split(accuracy_run):
    _, summary, _ = accuracy_run
    errors = goal_errors(summary)
    _, datamodule, _ = from_checkpoint(summary)
    sizes = datamodule.split_sizes()
    for split in ("train", "val", "test"):
        p, n = summary["metrics"][f"{split}/acc"], sizes[split]
        assert errors[split] == pytest.approx(math.sqrt(p * (1 - p) / n), abs=1e-6)


def test_errors_repeat_and_macro_f1_gets_a_bootstrap_error(accuracy_run):
    _, summary, _ = accuracy_run
    cfg, datamodule, task = from_checkpoint(summary)
    ckpt = summary["best_checkpoint"]
    evaluate_splits(cfg, task, datamodule, ("val", "test"), ckpt)
    first = dict(task.standard_errors)
    evaluate_splits(cfg, task, datamodule, ("val", "test"), ckpt)
    assert task.standard_errors == first  # a fixed-seed bootstrap: same checkpoint, same errors
    assert set(first) == {f"{s}/{m}" for s in ("val", "test") for m in ("acc", "f1", "loss")}
    assert first["val/acc"] == pytest.approx(summary["standard_errors"]["val"], abs=1e-12)
    # on balanced digits macro F1 moves with accuracy: the bootstrap's error is of the same size
    for split in ("val", "test"):
        assert 0.5 < first[f"{split}/f1"] / first[f"{split}/acc"] < 2.0, first


def _confusion_f1_error(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> float:
    """The bootstrap error of macro F1 as it was first written: a K x K confusion matrix per resample."""
    codes = targets * num_classes + preds

    def f1(indices: torch.Tensor) -> torch.Tensor:
        counts = torch.bincount(codes[indices], minlength=num_classes**2)
        return macro_f1(counts.view(num_classes, num_classes))

    return float(bootstrap_errors(len(codes), f1)[0])


@pytest.mark.parametrize("num_classes", [2, 3, 7])
def test_macro_f1_error_from_class_counts_equals_the_confusion_matrix_one(num_classes: int):
    generator = torch.Generator().manual_seed(num_classes)
    targets = torch.randint(num_classes, (300,), generator=generator)
    # right two times in three, else a random class: some classes are never predicted by chance
    guesses = torch.randint(num_classes, (300,), generator=generator)
    preds = torch.where(torch.rand(300, generator=generator) < 0.67, targets, guesses)
    losses = torch.rand(300, generator=generator)
    errors = classification_errors("val", preds, targets, losses, num_classes)
    expected = _confusion_f1_error(preds, targets, num_classes)
    assert errors["val/f1"] == pytest.approx(expected, abs=1e-12) and expected > 0


def test_macro_f1_error_of_many_classes_never_counts_pairs_of_classes(monkeypatch):
    """10,000 classes: per-class counts (length K), never a K x K confusion matrix."""
    num_classes, count = 10_000, 2_000
    lengths: list[int] = []
    bincount = torch.bincount

    def counted(values: torch.Tensor, weights=None, minlength: int = 0) -> torch.Tensor:
        lengths.append(minlength)
        return bincount(values, weights, minlength)

    monkeypatch.setattr(torch, "bincount", counted)
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(num_classes, (count,), generator=generator)
    preds = torch.where(torch.arange(count) % 2 == 0, targets, torch.zeros_like(targets))
    errors = classification_errors("test", preds, targets, torch.ones(count), num_classes)
    assert errors["test/f1"] > 0
    assert lengths and max(lengths) == num_classes, max(lengths)


@pytest.fixture(scope="module")
def loss_run(tmp_path_factory):
    """goal=loss with an unreachable target: the metrics of the run the next tests build on."""
    overrides = [*SMALL_SPLITS, "goal=loss", "goal.target=0.0", NO_BASELINE]
    return train(tmp_path_factory.mktemp("loss"), overrides)


def test_loss_error_comes_from_per_example_losses_of_the_checkpoint(loss_run):
    _, summary, _ = loss_run
    errors = goal_errors(summary)
    _, datamodule, task = from_checkpoint(summary)
    for split in ("val", "test"):
        x, y = datamodule.splits[split]
        with torch.no_grad():
            losses = cross_entropy(task.net(x), y, reduction="none")
        assert summary["metrics"][f"{split}/loss"] == pytest.approx(float(losses.mean()), abs=1e-5)
        assert errors[split] == pytest.approx(plug_in_error(losses), abs=1e-6)
    assert errors["val"] > 0.02  # 90 examples: far noisier than the whole split's 0.005


def test_loss_gap_within_the_noise_is_not_a_mismatch(tmp_path: Path, loss_run):
    _, first, _ = loss_run
    val, test = first["metrics"]["val/loss"], first["metrics"]["test/loss"]
    errors = first["standard_errors"]
    noise = 2 * math.hypot(errors["val"], errors["test"])
    assert val < test and test - val < noise, (val, test, noise)  # what this split gives
    # a target between them: validation meets it, test misses it by less than the noise
    target = (val + test) / 2
    overrides = [*SMALL_SPLITS, "goal=loss", f"goal.target={target}", NO_BASELINE]
    _, summary, _ = train(tmp_path, overrides)
    assert summary["metrics"]["val/loss"] == pytest.approx(val, abs=1e-6)  # the same model
    assert summary["metrics"]["test/loss"] > target >= summary["metrics"]["val/loss"]
    assert summary["verdict"] == "goal_met"
    assert summary["diagnosis"]["verdict"] != "distribution_mismatch"
    line = f"differ by {test - val:.4f}, within their sampling noise (±{noise:.4f}"
    assert any(line in evidence for evidence in summary["diagnosis"]["evidence"]), summary[
        "diagnosis"
    ]["evidence"]


# -- segmentation ---------------------------------------------------------------------------


def test_segmentation_errors_bootstrap_images(tmp_path: Path):
    _, summary, _ = train(
        tmp_path,
        ["model=fcn", "trainer.max_epochs=2", "data.train_size=64", "data.val_size=32",
         "data.test_size=32", "data.image_size=48", "data.batch_size=8", NO_BASELINE],
    )  # fmt: skip
    assert summary["goal"]["metric"] == "val/miou"
    goal_errors(summary)
    cfg, datamodule, task = from_checkpoint(summary)
    evaluate_splits(cfg, task, datamodule, ("val",), summary["best_checkpoint"])
    errors = task.standard_errors
    assert errors["val/miou"] == pytest.approx(summary["standard_errors"]["val"], abs=1e-12)
    images, masks = (torch.stack(t) for t in zip(*datamodule.splits["val"], strict=True))
    with torch.no_grad():
        logits = task.net(images)
    classes, valid = logits.shape[1], masks != 255
    confusions = torch.stack(
        [
            torch.bincount(m[v] * classes + p[v], minlength=classes**2).view(classes, classes)
            for m, p, v in zip(masks, logits.argmax(dim=1), valid, strict=True)
        ]
    )
    # the statistic the bootstrap resamples is the logged metric on the whole split
    assert float(mean_iou(confusions.sum(0).double(), 255)) == pytest.approx(
        summary["metrics"]["val/miou"], abs=1e-5
    )
    pixel_losses = cross_entropy(logits, masks, ignore_index=255, reduction="none")
    per_image = pixel_losses.flatten(1).sum(1) / valid.flatten(1).sum(1)
    assert errors["val/loss"] == pytest.approx(plug_in_error(per_image), abs=1e-6)
    # pixels of one image are not independent draws: per image, the error is several times
    # what a binomial over all pixels would claim
    p, pixels = summary["metrics"]["val/pixel_acc"], int(valid.sum())
    assert errors["val/pixel_acc"] > 2 * math.sqrt(p * (1 - p) / pixels)


# -- detection ------------------------------------------------------------------------------


@pytest.mark.slow
def test_detection_map_error_is_a_bootstrap_over_images(tmp_path: Path):
    _, summary, _ = train(
        tmp_path,
        ["model=faster_rcnn", "trainer.max_epochs=1", "data.train_size=32", "data.val_size=16",
         "data.test_size=16", "data.image_size=64", "data.batch_size=4"],
    )  # fmt: skip
    assert summary["goal"]["metric"] == "val/map"
    errors = goal_errors(summary)
    assert errors["val"] < 0.5
    cfg, datamodule, task = from_checkpoint(summary)
    evaluate_splits(cfg, task, datamodule, ("val",), summary["best_checkpoint"])
    # the boxes of an eval-mode net do not change: the same resamples give the same error
    assert task.standard_errors["val/map"] == pytest.approx(errors["val"], abs=1e-12)
    for name in ("loss", "loss_classifier", "loss_box_reg", "map_50", "mar_100"):
        assert math.isfinite(task.standard_errors[f"val/{name}"])
    assert task.standard_errors["val/loss"] > 0
    assert "train/map" not in task.standard_errors  # the bootstrap runs on val and test only


# -- VAE ------------------------------------------------------------------------------------


def test_vae_nelbo_error_comes_from_per_image_nelbo(tmp_path: Path):
    _, summary, _ = train(tmp_path, ["model=vae", "trainer.max_epochs=1"])
    assert summary["goal"]["metric"] == "val/nelbo"
    errors = goal_errors(summary)
    cfg, datamodule, task = from_checkpoint(summary)
    x = datamodule.splits["val"][0]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)  # the codes' draw, without moving the random state of later tests
        target = task.to_unit(x)
        logits, mean, log_var = task.net(target)
    recon = binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)
    kl = (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp())).sum(1)
    # another draw of the codes: the spread over images dominates, the draw moves it a little
    assert errors["val"] == pytest.approx(plug_in_error(recon + kl), rel=0.1)
    evaluate_splits(cfg, task, datamodule, ("val",), summary["best_checkpoint"])
    precision, count = summary["metrics"]["val/precision"], min(len(x), 256)
    assert task.standard_errors["val/precision"] == pytest.approx(
        math.sqrt(precision * (1 - precision) / count), abs=1e-9
    )
    assert {"val/recon", "val/kl", "val/loss", "val/recall", "val/quality"} <= set(
        task.standard_errors
    )


@pytest.mark.parametrize("classes", [2, 7, 10_000])
def test_macro_f1_from_class_counts_equals_torchmetrics(classes: int):
    """The task's macro F1 counts per class (time and memory linear in examples + classes), and
    gives torchmetrics' MulticlassF1Score(average="macro"), absent classes left out, over several
    updates."""
    from torchmetrics.classification import MulticlassF1Score

    from practicum.tasks.classification import MacroF1

    generator = torch.Generator().manual_seed(classes)
    target = torch.randint(0, min(classes, 50), (3000,), generator=generator)
    noise = torch.randint(0, classes, (3000,), generator=generator)
    preds = torch.where(torch.rand(3000, generator=generator) < 0.6, target, noise)
    ours, theirs = MacroF1(classes), MulticlassF1Score(classes, average="macro")
    for part in torch.arange(3000).split(700):
        ours.update(preds[part], target[part])
    theirs.update(preds, target)
    assert float(ours.compute()) == pytest.approx(float(theirs.compute()), abs=1e-6)
