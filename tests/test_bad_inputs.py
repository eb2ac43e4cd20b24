"""Every mistake is one line: bad inputs through the real CLI, each refused before anything trains.

Each case asserts exit status 2, exactly one stderr line (`practicum: error: ...`) naming the key
or the file, no traceback, nothing on stdout that could pass for a result, and no run folder left
under `paths.log_dir`. The classes of mistake covered:

- a top-level key of the wrong type or out of its range (seed, num_threads, test, ...), or one
  that no config file has (`+sed=3`);
- a key set without `+` that the config does not have (`optimizer.lrr=0.1`), or added with `+`
  that is not an argument of its target (optimizer, scheduler factory, model, model.net,
  data) or not a setting (beside the scheduler's factory, in a group practicum owns): the closest
  valid key is named; a value that is not one of an argument's choices; settings that contradict
  each other (tune.min_lr >= tune.max_lr);
- split fractions that leave no training split, or fewer than two examples to train on;
- a goal metric the model's task does not log (or a monitor naming one), a goal target outside
  its metric's range, a goal mode against its metric's direction;
- a data file too small for its splits, with one class, with a class of too few examples, empty,
  without its label column, of ragged rows, with words, empty cells, NaN or inf where numbers
  belong, not UTF-8, of the wrong array shapes, with an unreadable image, a malformed box or a
  mask of colours: in every data family (csv, csv_sequences, npz, image_folder, coco,
  voc_segmentation);
- eval.py and predict.py arguments: a split that does not exist, batch_size 0, a required
  argument left out, a checkpoint that is not one, an input of the wrong kind, a CSV of the wrong
  width or with NaN, an output that is a folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli, train


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _two_classes(n: int = 30) -> list[str]:
    return [f"{i * 0.1:.2f},{i % 3},{i % 2}" for i in range(n)]


def _images(root: Path, counts: dict[str, int], size: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _coco(tmp: Path, images: int, box: list | None = None) -> list[str]:
    folder = _images(tmp / "coco", {"images": images}, size=32) / "images"
    index = {
        "images": [{"id": i, "file_name": f"{i}.png"} for i in range(images)],
        "annotations": [
            {"id": i, "image_id": i, "category_id": 1, "bbox": box or [2, 2, 12, 12]}
            for i in range(images)
        ],
        "categories": [{"id": 1, "name": "square"}],
    }
    (tmp / "coco.json").write_text(json.dumps(index))
    return [
        "data=coco",
        "model=faster_rcnn",
        f"data.root={folder}",
        f"data.ann_file={tmp / 'coco.json'}",
    ]


def _voc_with_colour_masks(tmp: Path) -> list[str]:
    root = tmp / "voc"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    ids = [f"img{i}" for i in range(6)]
    for image_id in ids:
        Image.new("RGB", (16, 16), (90, 20, 200)).save(root / "JPEGImages" / f"{image_id}.jpg")
        Image.new("RGB", (16, 16), (1, 0, 0)).save(root / "SegmentationClass" / f"{image_id}.png")
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids[:4]) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(ids[4:]) + "\n")
    return ["data=voc_segmentation", "model=segnet", f"data.root={root}"]


def _npz(tmp: Path, **arrays: np.ndarray) -> list[str]:
    np.savez(tmp / "data.npz", **arrays)
    return ["data=npz", "model=mlp", f"data.path={tmp / 'data.npz'}"]


def _table(tmp: Path, header: str, rows: list[str]) -> list[str]:
    return ["data=csv", "model=mlp", f"data.path={_csv(tmp / 'table.csv', header, rows)}"]


def _sequences(tmp: Path, rows: list[str]) -> list[str]:
    path = _csv(tmp / "steps.csv", "id,label,value", rows)
    return ["data=csv_sequences", "model=lstm", f"data.path={path}"]


def _steps(sequences: int) -> list[str]:
    return [f"s{i},{i % 2},{j}" for i in range(sequences) for j in range(3)]


def _broken_png(tmp: Path) -> list[str]:
    root = _images(tmp / "images", {"cat": 6, "dog": 6})
    (root / "dog" / "notes.png").write_text("not an image")
    return ["data=image_folder", f"data.root={root}", "data.image_size=12"]


def _latin1_csv(tmp: Path) -> list[str]:
    path = tmp / "latin1.csv"
    path.write_bytes("f0,label\n1,caf\xe9\n".encode("latin-1"))
    return ["data=csv", "model=mlp", f"data.path={path}"]


# (case id, a function of the test's folder giving train.py's arguments, what the line must say)
TRAIN_CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("seed-text", lambda t: ["seed=abc"], "seed='abc' is invalid: seed must be a whole number"),
    ("threads-zero", lambda t: ["num_threads=0"], "num_threads=0 is invalid: num_threads must be"),
    (
        "test-not-bool",
        lambda t: ["test=maybe"],
        "test='maybe' is invalid: test must be true or false",
    ),
    ("top-level-key", lambda t: ["+sed=3"], "sed is not a key of the config: did you mean seed?"),
    (
        "override-key",
        lambda t: ["optimizer.lrr=0.1"],
        "optimizer.lrr is not a key of the config: did you mean optimizer.lr?",
    ),
    (
        "optimizer-key",
        lambda t: ["+optimizer.lrr=0.1"],
        "optimizer.lrr is not an argument of torch.optim.Adam: did you mean optimizer.lr?",
    ),
    (
        "scheduler-factory-key",
        lambda t: ["scheduler=step", "+scheduler.factory.gama=0.5"],
        "scheduler.factory.gama is not an argument of torch.optim.lr_scheduler.StepLR: "
        "did you mean scheduler.factory.gamma?",
    ),
    (
        "scheduler-key",
        lambda t: ["+scheduler.intervl=step"],
        "scheduler.intervl is not a setting: did you mean scheduler.interval?",
    ),
    (
        "net-key",
        lambda t: ["data=wine", "model=mlp", "+model.net.hiden_units=8"],
        "did you mean model.net.hidden_units?",
    ),
    ("data-key", lambda t: ["+data.bach_size=8"], "did you mean data.batch_size?"),
    (
        "goal-key",
        lambda t: ["+goal.taget=0.5"],
        "goal.taget is not a setting: did you mean goal.target?",
    ),
    (
        "data-choice",
        lambda t: ["data=digits_rows", "model=lstm", "data.normalize=bogus"],
        "data.normalize='bogus' is invalid: normalize must be one of per_feature, global, none",
    ),
    (
        "tune-range",
        lambda t: ["tune=lr", "tune.min_lr=1", "tune.max_lr=0.1"],
        "tune.min_lr=1, tune.max_lr=0.1: need min_lr < max_lr",
    ),
    (
        "fractions",
        lambda t: ["data.val_fraction=0.9", "data.test_fraction=0.9"],
        "data.val_fraction=0.9 and data.test_fraction=0.9 leave no examples to train on",
    ),
    (
        "goal-metric",
        lambda t: ["goal.metric=val/nope"],
        "goal.metric=val/nope is not a metric model=cnn logs during training: use one of val/loss",
    ),
    (
        "goal-target-share",
        lambda t: ["goal.target=2"],
        "goal.target=2 is out of the range of val/acc, [0, 1]",
    ),
    ("goal-target-loss", lambda t: ["goal=loss", "goal.target=-1"], "goal.target=-1 is out of"),
    ("goal-mode", lambda t: ["goal.mode=min"], "goal.mode=min but val/acc is better when higher"),
    (
        "monitor",
        lambda t: ["callbacks.early_stopping.monitor=val/accuracy"],
        "callbacks.early_stopping.monitor=val/accuracy is not a metric model=cnn logs during "
        "training: did you mean callbacks.early_stopping.monitor=val/acc?",
    ),
    (
        "fractions-leave-one",
        lambda t: ["data=wine", "model=mlp", "data.val_fraction=0.98", "data.test_fraction=0.01"],
        "data=wine has 178 examples, too few for train, val and test splits with "
        "data.val_fraction=0.98 and data.test_fraction=0.01 (they leave 1 to train on",
    ),
    # tables
    ("csv-one-row", lambda t: _table(t, "f0,f1,label", ["1,2,a"]), "table.csv' has 1 example"),
    ("csv-header-only", lambda t: _table(t, "f0,f1,label", []), "table.csv' holds no examples"),
    (
        "csv-nan",
        lambda t: _table(t, "f0,f1,label", [*_two_classes(), "nan,1,0", ",2,1", "inf,1,1"]),
        "table.csv' has empty, NaN or inf values in lines 32, 33, 34: fix or drop them",
    ),
    (
        "csv-one-class",
        lambda t: _table(t, "f0,label", [f"{i},a" for i in range(20)]),
        "table.csv' has one class only ('a')",
    ),
    (
        "csv-rare-class",
        lambda t: _table(t, "f0,f1,label", [*_two_classes(), "1,1,2"]),
        "table.csv' has too few examples of class '2' (1)",
    ),
    (
        "csv-word",
        lambda t: _table(t, "f0,f1,label", [*_two_classes(), "1,many,0"]),
        "table.csv' line 32, column 'f1' holds 'many', not a number",
    ),
    (
        "csv-ragged",
        lambda t: _table(t, "f0,f1,label", [*_two_classes(), "1,0"]),
        "table.csv' line 32 has 2 values but the header has 3 columns",
    ),
    (
        "csv-no-label-column",
        lambda t: _table(t, "f0,f1,class", _two_classes()),
        "table.csv' has no column 'label' (columns: f0, f1, class): set data.label_column",
    ),
    ("csv-not-utf8", _latin1_csv, "latin1.csv' is not a readable CSV file"),
    # arrays
    (
        "npz-nan",
        lambda t: _npz(t, x=np.r_[np.ones((29, 3)), [[1, np.inf, 1]]], y=np.arange(30) % 2),
        "data.npz' has NaN or inf in rows of 'x': 29",
    ),
    (
        "npz-one-hot",
        lambda t: _npz(t, x=np.ones((30, 3)), y=np.eye(2)[np.arange(30) % 2]),
        "data.npz' has x of shape (30, 3) and y of shape (30, 2)",
    ),
    (
        "npz-too-few",
        lambda t: _npz(t, x=np.ones((2, 3)), y=np.array([0, 1])),
        "data.npz' has 2 examples, too few for train, val and test splits",
    ),
    # sequences
    (
        "sequences-nan",
        lambda t: _sequences(t, [*_steps(12), "s3,1,nan"]),
        "steps.csv' has empty, NaN or inf values in lines 38",
    ),
    ("sequences-too-few", lambda t: _sequences(t, _steps(2)), "steps.csv' has 2 examples"),
    # image files
    ("images-unreadable", _broken_png, "notes.png is not a readable image"),
    (
        "images-one-class",
        lambda t: ["data=image_folder", f"data.root={_images(t / 'one', {'cat': 8})}"],
        "one' has one class only ('cat')",
    ),
    (
        "images-rare-class",
        lambda t: [
            "data=image_folder",
            f"data.root={_images(t / 'rare', {'cat': 8, 'dog': 1})}",
        ],
        "rare' has too few examples of class 'dog' (1)",
    ),
    (
        "coco-box",
        lambda t: _coco(t, 6, box=[1, 2, 3]),
        "coco.json': annotations[0] has bbox [1, 2, 3]",
    ),
    ("coco-too-few", lambda t: _coco(t, 2), "coco.json' lists 2 images, too few"),
    (
        "voc-colour-masks",
        _voc_with_colour_masks,
        "img0.png has 3 channels: a mask is a one-channel",
    ),
]


def _assert_refused(result, log_dir: Path, expected: str) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("practicum: error: "), result.stderr[-3000:]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == "", result.stdout[-2000:]
    left = [p for p in log_dir.glob("*/runs/*")] + [p for p in log_dir.glob("*/multiruns/*")]
    assert left == [], left


@pytest.mark.parametrize(
    ("make", "expected"), [case[1:] for case in TRAIN_CASES], ids=[c[0] for c in TRAIN_CASES]
)
def test_a_train_mistake_is_one_line(tmp_path: Path, make, expected: str):
    log_dir = tmp_path / "logs"
    result = run_cli("train.py", *make(tmp_path), f"paths.log_dir={log_dir}")
    _assert_refused(result, log_dir, expected)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """A classifier trained on feature rows (wine's 13 features), one epoch."""
    folder = tmp_path_factory.mktemp("trained")
    _, summary, _ = train(
        folder,
        ["data=wine", "model=mlp", "trainer.max_epochs=1", "diagnosis.baseline_model=null"],
    )
    return summary["best_checkpoint"]


def _inputs(tmp: Path) -> dict[str, Path]:
    image = tmp / "photo.png"
    Image.new("RGB", (8, 8)).save(image)
    notes = tmp / "notes.txt"
    notes.write_text("1,2,3\n")
    narrow = _csv(tmp / "narrow.csv", "a,b,c", ["1,2,3"])
    header = ",".join(f"f{i}" for i in range(13))
    row = ",".join("1" for _ in range(13))
    nan = _csv(tmp / "nan.csv", header, [row, row.replace("1", "nan", 1), row])
    (tmp / "folder").mkdir()
    return {"image": image, "notes": notes, "narrow": narrow, "nan": nan, "folder": tmp / "folder"}


# (case id, script, arguments given the checkpoint and the inputs, what the line must say)
ENTRY_CASES = [
    ("eval-split", "eval.py", lambda c, i: [f"ckpt_path={c}", "split=bogus"], "split='bogus' is invalid: split must be one of train, val, test"),
    ("eval-no-ckpt", "eval.py", lambda c, i: [], "ckpt_path must be set"),
    ("eval-other-data", "eval.py", lambda c, i: [f"ckpt_path={c}", "+data=wine"], "eval.py does not read data: it rebuilds the model and data from the config stored in the checkpoint"),
    ("predict-other-net", "predict.py", lambda c, i: [f"ckpt_path={c}", f"input={i['narrow']}", "+model.net.depth=3"], "predict.py does not read model:"),
    ("eval-not-ckpt", "eval.py", lambda c, i: [f"ckpt_path={i['narrow']}"], "narrow.csv' is not a readable checkpoint"),
    ("predict-batch-size", "predict.py", lambda c, i: [f"ckpt_path={c}", f"input={i['narrow']}", "batch_size=0"], "batch_size=0 is invalid: batch_size must be a whole number >= 1"),
    ("predict-no-input", "predict.py", lambda c, i: [f"ckpt_path={c}"], "input must be set"),
    ("predict-text-file", "predict.py", lambda c, i: [f"ckpt_path={c}", f"input={i['notes']}"], "notes.txt is neither a CSV file nor an image"),
    ("predict-empty-folder", "predict.py", lambda c, i: [f"ckpt_path={c}", f"input={i['folder']}"], "folder holds no images"),
    ("predict-image-for-rows", "predict.py", lambda c, i: [f"ckpt_path={c}", f"input={i['image']}"], "photo.png holds images but this model was trained on feature rows of shape [13]"),
    ("predict-csv-width", "predict.py", lambda c, i: [f"ckpt_path={c}", f"input={i['narrow']}"], "narrow.csv line 2 has 3 values but the model takes 13"),
    ("predict-csv-nan", "predict.py", lambda c, i: [f"ckpt_path={c}", f"input={i['nan']}"], "nan.csv has empty, NaN or inf values in lines 3"),
    ("predict-output-folder", "predict.py", lambda c, i: [f"ckpt_path={c}", f"input={i['nan']}", f"output={i['folder']}"], "is a folder: pass the path of a .csv file"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("script", "make", "expected"),
    [case[1:] for case in ENTRY_CASES],
    ids=[case[0] for case in ENTRY_CASES],
)
def test_an_eval_or_predict_mistake_is_one_line(
    tmp_path: Path, checkpoint: str, script: str, make, expected: str
):
    log_dir = tmp_path / "logs"
    result = run_cli(script, *make(checkpoint, _inputs(tmp_path)), f"paths.log_dir={log_dir}")
    _assert_refused(result, log_dir, expected)
