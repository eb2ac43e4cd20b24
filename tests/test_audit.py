"""The data audit: wrong labels (confident learning), examples shared between splits, imbalance, the
worst mistakes, and the cases they decide."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from practicum.config.goal import Goal
from practicum.methodology.cases import RunFacts
from practicum.methodology.data_audit import Audit, data_case
from practicum.methodology.diagnosis import ON_PAPER, diagnose
from practicum.methodology.label_audit import find_label_issues
from practicum.methodology.leakage import (
    exact_matches,
    image_matches,
    image_signatures,
    table_matches,
)
from practicum.methodology.mistakes import confusion_picture, most_confused

from conftest import train

ACC = Goal("val/acc", "max", 0.95)


def flip(y: np.ndarray, rate: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = int(y.max()) + 1
    moved = np.flatnonzero(rng.random(len(y)) < rate)
    noisy = y.copy()
    noisy[moved] = (y[moved] + rng.integers(1, k, len(moved))) % k
    return noisy, moved


def blobs(n: int, k: int = 3, seed: int = 0, spread: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Well separated classes: a clean out-of-sample accuracy near 1."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = rng.normal(0, spread, (k, 6))
    return (centres[y] + rng.normal(0, 1, (n, 6))).astype(np.float32), y


def write_table(path: Path, x: np.ndarray, y, split: list[str] | None = None) -> Path:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f"f{i}" for i in range(x.shape[1])] + ["label"] + (["split"] if split else []))
    for i, (row, label) in enumerate(zip(x, y, strict=True)):
        writer.writerow([f"{v:.9g}" for v in row] + [label] + ([split[i]] if split else []))
    path.write_text(out.getvalue())
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


# -- confident learning -------------------------------------------------------------------------


def test_confident_learning_finds_the_flipped_labels_and_their_rate():
    x, y = blobs(900, k=3)
    noisy, moved = flip(y, 0.2)
    from sklearn.model_selection import cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    probs = cross_val_predict(KNeighborsClassifier(15), x, noisy, cv=5, method="predict_proba")
    issues = find_label_issues(noisy, probs)
    found = set(issues.indices.tolist())
    hits = len(found & set(moved.tolist()))
    assert hits / len(found) >= 0.9 and hits / len(moved) >= 0.9
    assert abs(issues.noise_rate - len(moved) / len(y)) <= 0.03
    # ranked by self-confidence, and the suggestion is the class the examples were moved from
    assert np.all(np.diff(issues.score) >= 0)
    assert np.mean(issues.suggested == y[issues.indices]) >= 0.9


def test_clean_labels_are_hardly_flagged_and_every_class_keeps_an_example():
    x, y = blobs(600, k=4)
    probs = np.eye(4)[y] * 0.9 + 0.025
    assert len(find_label_issues(y, probs).indices) == 0
    # a model that contradicts every label of class 0 still leaves one of them
    wrong = probs.copy()
    wrong[y == 0] = np.eye(4)[1] * 0.9 + 0.025
    issues = find_label_issues(y, wrong)
    assert (y[issues.indices] == 0).sum() == (y == 0).sum() - 1


def test_the_flags_agree_with_cleanlab_on_the_same_probabilities():
    cleanlab = pytest.importorskip("cleanlab.filter")
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    x, y = load_digits(return_X_y=True)
    noisy, _ = flip(y, 0.1)
    probs = cross_val_predict(
        LogisticRegression(max_iter=2000), x / 16, noisy, cv=5, method="predict_proba"
    )
    ours = np.zeros(len(y), dtype=bool)
    ours[find_label_issues(noisy, probs).indices] = True
    theirs = cleanlab.find_label_issues(noisy, probs)
    assert (ours & theirs).sum() / (ours | theirs).sum() >= 0.97


def test_twenty_thousand_classes_never_build_a_class_by_class_matrix():
    import tracemalloc

    rng = np.random.default_rng(0)
    k, n = 20_000, 400
    labels = rng.integers(0, k, n)
    probs = np.full((n, k), 0.1 / k, dtype=np.float32)
    probs[np.arange(n), labels] += 0.9
    probs[:20, labels[:20]] = 0.0  # twenty confidently of another class
    probs[np.arange(20), (labels[:20] + 1) % k] = 0.9
    tracemalloc.start()
    issues = find_label_issues(labels, probs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < k * k / 2  # a K x K matrix of bytes alone would be 400 MB
    assert set(issues.indices.tolist()) <= set(range(20))


# -- leakage --------------------------------------------------------------------------------------


def test_near_duplicate_rows_are_found_whatever_the_scale_and_distinct_rows_are_not():
    x, _ = blobs(800)
    x = x * 1000 + 5e4  # large values: 1e-4 relative noise is 5 units
    rng = np.random.default_rng(1)
    copies = x[:40] * (1 + 1e-4 * rng.standard_normal(x[:40].shape))
    query = np.concatenate([x[600:], copies, x[40:50]])
    found = table_matches(x[:600], query)
    assert (found[:200] < 0).all()
    assert (found[200:240] == np.arange(40)).all() and (found[240:] == np.arange(40, 50)).all()
    assert list(exact_matches(x[:600], np.concatenate([x[5:7], x[700:701]]))) == [5, 6, -1]


def _digit_images(indices, size=32, jpeg=False, stretch=None):
    from PIL import Image
    from sklearn.datasets import load_digits
    from torchvision.transforms import v2

    images = load_digits().images
    batch = []
    for i in indices:
        picture = Image.fromarray((images[i] * 255 / 16).astype(np.uint8))
        picture = picture.resize((stretch or size,) * 2, Image.BICUBIC)
        out = io.BytesIO()
        picture.save(out, "JPEG" if jpeg else "PNG", **({"quality": 90} if jpeg else {}))
        out.seek(0)
        tensor = v2.functional.pil_to_tensor(Image.open(out).convert("RGB"))
        batch.append(v2.functional.resize(tensor, [size, size], antialias=True))
    import torch

    return torch.stack(batch).float()


def test_reencoded_and_resized_images_are_found_and_different_digits_are_not():
    train = image_signatures(_digit_images(range(300)))
    query = image_signatures(
        torch_cat(
            _digit_images(range(300, 500)),
            _digit_images(range(20), jpeg=True),
            _digit_images(range(20, 40), jpeg=True, stretch=36),
        )
    )
    found = image_matches(train, query)
    assert (found[:200] < 0).all()
    assert (found[200:] == np.arange(40)).all()


def torch_cat(*batches):
    import torch

    return torch.cat(batches)


# -- the worst mistakes --------------------------------------------------------------------------


def test_most_confused_pairs_and_a_picture_for_ten_thousand_classes(tmp_path):
    given = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    predicted = np.array([1, 1, 0, 0, 1, 1, 0, 1])
    assert most_confused(given, predicted)[:2] == [(0, 1, 2), (2, 1, 2)]
    rng = np.random.default_rng(0)
    many = rng.integers(0, 10_000, 3000)
    path = confusion_picture(
        many, rng.integers(0, 10_000, 3000), [f"c{i}" for i in range(10_000)], tmp_path / "c.png"
    )
    assert path.read_bytes()[:4] == b"\x89PNG"


# -- the cases -----------------------------------------------------------------------------------


def _facts(audit: Audit, val: float, train: float | None = None, epochs: int = 10) -> RunFacts:
    history = {e: {"train/loss": 1.0 / (e + 1) if e < 3 else 0.25} for e in range(epochs)}
    return RunFacts(
        metrics={"train/acc": train or val, "val/acc": val, "test/acc": val},
        goal=ACC,
        history=history,
        problem="classification",
        sizes={"train": 1000, "val": 300, "test": 300},
        num_classes=3,
        audit=audit,
    )


def test_duplicates_make_the_case_leakage_even_when_the_goal_is_met():
    audit = Audit(
        audited={"train": 1000, "val": 300, "test": 300},
        duplicates={"val": 0, "test": 15},
        without_duplicates={"val/acc": 0.97, "test/acc": 0.91},
    )
    diagnosis = diagnose(_facts(audit, 0.97))
    assert diagnosis.case == "leakage" and diagnosis.stop
    assert diagnosis.headline.startswith(ON_PAPER)
    line = next(e for e in diagnosis.evidence if "copy in the training split" in e)
    assert "test/acc 0.9100 without them (0.9700 with)" in line
    assert "duplicates.csv" in diagnosis.next_steps[0]
    # one copy among 300 is noted, not a case
    audit.duplicates = {"val": 0, "test": 1}
    assert diagnose(_facts(audit, 0.97)).case == "goal_met"


def test_a_majority_class_that_meets_an_accuracy_goal_is_the_case_imbalance():
    audit = Audit(
        class_shares={"ok": 0.95, "fault": 0.05},
        majority_class="ok",
        majority={"val/acc": 0.95, "val/f1": 0.487, "test/acc": 0.95},
    )
    diagnosis = diagnose(_facts(audit, 0.96))
    assert diagnosis.case == "imbalance" and "majority class (ok, 95%" in diagnosis.headline
    advice = " ".join(diagnosis.next_steps)
    assert "goal=f1" in advice and "model.class_weights=balanced" in advice
    assert any(
        "Predicting the majority class (ok) scores acc: val 0.9500" in e for e in diagnosis.evidence
    )
    # far from the target: no case
    audit.majority = {"val/acc": 0.6}
    assert data_case(audit, ACC, {"val/acc": 0.96}, None) is None


def test_label_noise_that_caps_accuracy_below_the_target_is_a_noise_floor():
    audit = Audit(
        audited={"train": 1000, "val": 300, "test": 300},
        label_issues=400,
        label_noise_rate=0.25,
        label_noise_rates={"train": 0.25, "val": 0.25, "test": 0.25},
    )
    diagnosis = diagnose(_facts(audit, 0.72, train=0.74))
    assert diagnosis.case == "noise_floor"
    assert "25.0% of the labels" in diagnosis.headline and "0.7500" in diagnosis.headline
    assert "label_issues.csv" in diagnosis.stop and "clean" in diagnosis.stop
    # a model far below the cap: the labels do not explain the gap
    assert diagnose(_facts(audit, 0.40, train=0.45)).case != "noise_floor"
    # a model that flags good labels because it is weak: the training labels' own estimate
    # (a cross-fitted model) does not agree, so nothing is concluded
    audit.label_noise_rates = {"train": 0.01, "val": 0.25, "test": 0.25}
    assert data_case(audit, ACC, {"val/acc": 0.72}, None) is None
    # without the training labels' estimate (image files, too few examples per class): nothing
    audit.label_noise_rates = {"val": 0.25, "test": 0.25}
    assert data_case(audit, ACC, {"val/acc": 0.72}, None) is None
    diagnosis = diagnose(_facts(audit, 0.72, train=0.74))
    assert any("diagnosis.audit_train_images=true" in line for line in diagnosis.evidence)
    assert data_case(audit, ACC, {"val/acc": 0.72}, None, converged=False) is None


def test_too_few_training_examples_per_class_leave_the_training_labels_unjudged(tmp_path):
    x, y = blobs(200, k=4)
    path = write_table(tmp_path / "few.csv", x, y)
    _, summary, _ = train(
        tmp_path,
        ["data=csv", f"data.path={path}", "model=mlp", "trainer.max_epochs=2",
         "data.train_subset=24"],
    )  # fmt: skip
    audit = summary["audit"]
    assert "train" not in audit["audited"]
    assert any("fewer than 10 per class" in why for why in audit["skipped"])
    assert "look wrong" not in summary["diagnosis"]["headline"]


# -- whole runs ----------------------------------------------------------------------------------


def test_a_noisy_table_gets_its_flipped_rows_named_and_the_noise_floor(tmp_path):
    x, y = blobs(900, k=3)
    noisy, moved = flip(y, 0.25)
    path = write_table(tmp_path / "noisy.csv", x, [f"k{v}" for v in noisy])
    _, summary, run_dir = train(
        tmp_path, ["data=csv", f"data.path={path}", "model=mlp", "trainer.max_epochs=12"]
    )
    issues = run_dir / "label_issues.csv"
    assert issues.read_text().splitlines()[0] == "split,origin,given,suggested,score"
    rows = read_rows(issues)
    found = {int(r["origin"]) for r in rows}
    hits = len(found & set(moved.tolist()))
    assert hits / len(found) >= 0.8 and hits / len(moved) >= 0.8
    # the origin is the 0-based data row: its given label is the file's
    assert all(r["given"] == f"k{noisy[int(r['origin'])]}" for r in rows)
    audit = summary["audit"]
    assert audit["label_issues"] == len(rows)
    assert abs(audit["label_noise_rate"] - len(moved) / len(y)) <= 0.04
    assert summary["diagnosis"]["case"] == "noise_floor"
    report = (run_dir / "report.md").read_text()
    assert "labels look wrong" in report and "[label_issues.csv](label_issues.csv)" in report
    assert (run_dir / "confusion.png").is_file() and (run_dir / "worst_val.csv").is_file()


def test_copies_of_training_rows_in_test_are_leakage_with_scores_without_them(tmp_path):
    x, y = blobs(600, k=3, spread=1.5)
    split = ["train"] * 400 + ["val"] * 100 + ["test"] * 100
    rng = np.random.default_rng(3)
    copies = x[:30] * (1 + 1e-4 * rng.standard_normal(x[:30].shape)).astype(np.float32)
    path = write_table(
        tmp_path / "leaky.csv",
        np.concatenate([x, copies]),
        list(y) + list(y[:30]),
        split + ["test"] * 30,
    )
    _, summary, run_dir = train(
        tmp_path,
        ["data=csv", f"data.path={path}", "data.split_column=split", "model=mlp",
         "trainer.max_epochs=5"],
    )  # fmt: skip
    assert summary["audit"]["duplicates"] == {"val": 0, "test": 30}
    rows = read_rows(run_dir / "duplicates.csv")
    assert {(r["origin"], r["train_origin"]) for r in rows} == {
        (str(600 + i), str(i)) for i in range(30)
    }
    assert "test/acc" in summary["audit"]["without_duplicates"]
    assert summary["diagnosis"]["case"] == "leakage"


def test_an_audit_switched_off_writes_nothing_of_it(tmp_path, csv_table):
    _, summary, run_dir = train(
        tmp_path,
        ["data=csv", f"data.path={csv_table}", "model=mlp", "trainer.max_epochs=2",
         "diagnosis.audit=false"],
    )  # fmt: skip
    assert summary["audit"] is None and not (run_dir / "label_issues.csv").exists()


def test_a_95_5_table_met_by_its_majority_class_is_imbalance_not_success(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random(800) < 0.05).astype(int)
    x = rng.normal(0, 1, (800, 5)).astype(np.float32) + 0.8 * y[:, None]
    path = write_table(tmp_path / "rare.csv", x, ["ok" if v == 0 else "fault" for v in y])
    _, summary, run_dir = train(
        tmp_path,
        ["data=csv", f"data.path={path}", "model=mlp", "trainer.max_epochs=3", "goal.target=0.93"],
    )
    audit = summary["audit"]
    assert audit["majority_class"] == "ok" and audit["class_shares"]["ok"] > 0.9
    assert audit["majority"]["val/acc"] >= 0.9
    assert summary["diagnosis"]["case"] == "imbalance" and summary["goal_met"] is False
    advice = " ".join(summary["diagnosis"]["next_steps"])
    assert "goal=f1" in advice and "model.class_weights=balanced" in advice


def test_image_files_are_named_by_path_and_a_reencoded_copy_is_leakage(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    for seed, (split, count) in enumerate((("train", 14), ("val", 5), ("test", 5))):
        smooth_image_folder(root / split, count, seed)
    for name in ("cat", "dog", "owl"):  # a training image, re-encoded, also in test
        with Image.open(root / "train" / name / "3.png") as image:
            image.convert("RGB").save(root / "test" / name / "copy.jpg", quality=90)
    _, summary, run_dir = train(
        tmp_path,
        ["data=image_folder", f"data.root={root}", "data.image_size=24", "model=cnn",
         "trainer.max_epochs=2", "data.batch_size=16"],
    )  # fmt: skip
    audit = summary["audit"]
    assert audit["duplicates"] == {"val": 0, "test": 3}
    rows = read_rows(run_dir / "duplicates.csv")
    assert sorted(r["origin"] for r in rows) == [
        f"test/{n}/copy.jpg" for n in ("cat", "dog", "owl")
    ]
    assert all(r["train_origin"] == r["origin"].replace("test/", "train/").replace("copy.jpg", "3.png")
               for r in rows)  # fmt: skip
    assert set(audit["audited"]) == {"val", "test"}  # training image labels: behind a switch
    assert any("audit_train_images=true" in why for why in audit["skipped"])
    origins = {r["origin"] for r in read_rows(run_dir / "worst_val.csv")}
    assert origins and all(o.startswith("val/") for o in origins)
    for picture in ("confusion.png", "worst_val.png"):
        assert (run_dir / picture).read_bytes()[:4] == b"\x89PNG"


def smooth_image_folder(root: Path, per_class: int, seed: int) -> Path:
    """Photographs are smooth: random 6x6 pictures, a class colour each, enlarged to varying sizes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, name in enumerate(("cat", "dog", "owl")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 160, size=(6, 6, 3), dtype=np.uint8)
            pixels[..., k] = 220
            size = (24 + 2 * i, 20 + i)
            Image.fromarray(pixels).resize(size, Image.BICUBIC).save(root / name / f"{i}.png")
    return root


def test_the_training_images_are_cross_fitted_with_the_net_behind_one_switch(tmp_path):
    from test_image_data import write_image_folder

    root = write_image_folder(tmp_path / "images", per_class=16)
    _, summary, run_dir = train(
        tmp_path,
        ["data=image_folder", f"data.root={root}", "data.image_size=16", "model=cnn",
         "trainer.max_epochs=1", "diagnosis.audit_train_images=true", "diagnosis.audit_folds=2"],
    )  # fmt: skip
    audit = summary["audit"]
    assert audit["train_labels"] == "2-fold cross-fitted net"
    assert set(audit["audited"]) == {"train", "val", "test"}
    assert sum(audit["audited"].values()) == 48


def test_sequences_and_separate_files_name_their_own_origins(tmp_path):
    from practicum.run.build import build_datamodule

    from conftest import compose_train

    rng = np.random.default_rng(0)
    lines = ["id,label,a,b"]
    for n in range(40):
        lines += [f"s{n},{n % 2},{rng.normal():.4f},{rng.normal():.4f}" for _ in range(3)]
    path = tmp_path / "seq.csv"
    path.write_text("\n".join(lines) + "\n")
    cfg = compose_train(tmp_path, ["data=csv_sequences", f"data.path={path}", "model=lstm"])
    data = build_datamodule(cfg)
    ids = {o for split in ("train", "val", "test") for o in data.origins(split)}
    assert ids == {f"s{n}" for n in range(40)} and data.duplicate_rule == "exact"
    x, y = blobs(60, k=2)
    files = [write_table(tmp_path / f"{s}.csv", x[i::3], y[i::3]) for i, s in enumerate("abc")]
    cfg = compose_train(
        tmp_path,
        ["data=csv", f"data.path={files[0]}", f"data.val_path={files[1]}",
         f"data.test_path={files[2]}", "model=mlp"],
    )  # fmt: skip
    data = build_datamodule(cfg)
    assert data.origins("val") == [str(i) for i in range(20)]  # rows of its own file
    assert data.origins("train") == [str(i) for i in range(20)]


def test_a_data_module_that_cannot_name_its_examples_is_one_line_and_the_run_goes_on(tmp_path):

    import torch

    from practicum.data.base import SplitDataModule
    from practicum.run.audit import audit_run

    class Anonymous(SplitDataModule):
        num_classes = 2
        duplicate_rule = None

        def labels(self, split):
            return np.array([0, 1, 0, 1])

        def loader(self, split, shuffle=False):
            return [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))]

    net = torch.nn.Linear(3, 2)
    net.problem = "classification"
    cfg = _cfg(tmp_path)
    audit = audit_run(cfg, net, Anonymous(), {}, "t")
    assert any("cannot say where its examples come from" in why for why in audit.skipped)
    assert not (tmp_path / "label_issues.csv").exists()
    assert (tmp_path / "confusion.png").is_file()  # what needs no origin is still written
    assert len([why for why in audit.skipped if "origins" in why]) == 1


def _cfg(tmp_path):
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {"paths": {"output_dir": str(tmp_path)}, "seed": 0, "diagnosis": {"audit": True}}
    )


def test_cross_fitting_survives_a_class_too_rare_for_every_fold():
    from practicum.run.out_of_sample import cross_fitted

    rng = np.random.default_rng(0)
    y = np.zeros(60, dtype=np.int64)
    y[[3, 40]] = 1  # two examples: some folds train on one class only
    probs, name = cross_fitted(rng.normal(size=(60, 4)), y, 2, 5, 0)
    assert probs.shape == (60, 2) and np.allclose(probs.sum(axis=1), 1)
    assert name.startswith("5-fold cross-fitted")
