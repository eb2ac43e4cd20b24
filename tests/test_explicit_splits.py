"""Splits the data names itself, for a validation set drawn like the test set: a split column or
separate files (CSV, .npz), a val/ folder (image folders); and the mismatch advice that says how."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from practicum.errors import UserError
from practicum.run.build import build_datamodule
from test_image_data import write_image_folder

from conftest import compose_train, run_cli, train


def _table(path: Path, x: np.ndarray, y: np.ndarray, split: list[str] | None = None) -> Path:
    header = [f"f{i}" for i in range(x.shape[1])] + ["label"] + (["split"] if split else [])
    lines = [",".join(header)]
    for i, (row, label) in enumerate(zip(x, y, strict=True)):
        cells = [f"{v:.5f}" for v in row] + [f"c{label}"] + ([split[i]] if split else [])
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def _blobs(n: int, shift: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return rng.normal(0, 1, (n, 4)) + 3 * y[:, None] + shift, y


def test_a_split_column_decides_each_rows_split(tmp_path: Path):
    x, y = _blobs(120)
    split = ["train"] * 80 + ["validation"] * 25 + ["TEST"] * 15
    path = _table(tmp_path / "t.csv", x, y, split)
    cfg = compose_train(
        tmp_path, ["data=csv", f"data.path={path}", "data.split_column=split", "model=mlp"]
    )
    datamodule = build_datamodule(cfg)
    assert datamodule.split_sizes() == {"train": 80, "val": 25, "test": 15}
    assert datamodule.input_shape == [4]  # the split column is not a feature
    # the rows keep their order within a split: the val split is exactly rows 80..104
    val_x = datamodule.splits["val"][0].numpy() * datamodule.std + datamodule.mean
    assert np.allclose(val_x, x[80:105], atol=1e-4)


def test_separate_files_are_the_val_and_test_splits(tmp_path: Path):
    paths = {}
    for name, (n, seed) in {"train": (90, 0), "val": (30, 1), "test": (20, 2)}.items():
        paths[name] = _table(tmp_path / f"{name}.csv", *_blobs(n, seed=seed))
        np.savez(tmp_path / f"{name}.npz", x=_blobs(n, seed=seed)[0], y=_blobs(n, seed=seed)[1])
    csv = compose_train(
        tmp_path,
        [
            "data=csv",
            f"data.path={paths['train']}",
            f"data.val_path={paths['val']}",
            f"data.test_path={paths['test']}",
            "model=mlp",
        ],
    )
    assert build_datamodule(csv).split_sizes() == {"train": 90, "val": 30, "test": 20}
    npz = compose_train(
        tmp_path,
        [
            "data=npz",
            f"data.path={tmp_path / 'train.npz'}",
            f"data.val_path={tmp_path / 'val.npz'}",
            f"data.test_path={tmp_path / 'test.npz'}",
            "model=mlp",
        ],
    )
    assert build_datamodule(npz).split_sizes() == {"train": 90, "val": 30, "test": 20}


def test_an_npz_split_key_decides_each_examples_split(tmp_path: Path):
    x, y = _blobs(100)
    names = np.array(["train"] * 70 + ["val"] * 20 + ["test"] * 10)
    np.savez(tmp_path / "d.npz", x=x, y=y, split=names)
    cfg = compose_train(
        tmp_path,
        ["data=npz", f"data.path={tmp_path / 'd.npz'}", "data.split_key=split", "model=mlp"],
    )
    assert build_datamodule(cfg).split_sizes() == {"train": 70, "val": 20, "test": 10}


def test_an_image_folder_takes_its_own_val_folder(tmp_path: Path):
    root = tmp_path / "images"
    write_image_folder(root / "train", per_class=12)
    write_image_folder(root / "val", per_class=4)
    write_image_folder(root / "test", per_class=5)
    cfg = compose_train(
        tmp_path, ["model=cnn", "data=image_folder", f"data.root={root}", "data.image_size=32"]
    )
    datamodule = build_datamodule(cfg)
    # val/ is not cut from train/: all 36 training images train
    assert datamodule.split_sizes() == {"train": 36, "val": 12, "test": 15}


@pytest.mark.parametrize(
    "extra, says",
    [
        (["data.split_column=split"], "has split 'dev'"),
        (["data.val_path={val}"], "data.val_path and data.test_path go together"),
        (["data.split_column=nope"], "nope"),
    ],
)
def test_bad_explicit_splits_are_one_line(tmp_path: Path, extra: list[str], says: str):
    x, y = _blobs(60)
    path = _table(tmp_path / "t.csv", x, y, ["train"] * 40 + ["dev"] * 10 + ["test"] * 10)
    val = _table(tmp_path / "v.csv", *_blobs(10, seed=3))
    extra = [e.format(val=val) for e in extra]
    result = run_cli(
        "train.py",
        "data=csv",
        f"data.path={path}",
        "model=mlp",
        *extra,
        f"paths.log_dir={tmp_path}/logs",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(errors) == 1 and says in errors[0] and "Traceback" not in result.stderr
    with pytest.raises(UserError):
        build_datamodule(
            compose_train(tmp_path, ["data=csv", f"data.path={path}", "model=mlp", *extra])
        )


def test_a_mismatch_is_told_how_to_draw_validation_like_test(tmp_path: Path):
    """Test rows from a shifted source: validation meets the goal, test misses by far more than
    the noise; the advice names this data's way to give a validation split like the test split."""
    x, y = _blobs(600, seed=0)
    xt, yt = _blobs(200, shift=2.5, seed=1)
    split = ["train"] * 450 + ["val"] * 150 + ["test"] * 200
    path = _table(tmp_path / "t.csv", np.concatenate([x, xt]), np.concatenate([y, yt]), split)
    _, summary, _ = train(
        tmp_path,
        [
            "data=csv",
            f"data.path={path}",
            "data.split_column=split",
            "model=mlp",
            "goal.target=0.9",
            "trainer.max_epochs=10",
            "diagnosis.baseline_model=null",
        ],
    )
    diagnosis = summary["diagnosis"]
    assert diagnosis["verdict"] == "distribution_mismatch", diagnosis
    assert not summary["goal_met"] and diagnosis["stop"]
    advice = " ".join(diagnosis["next_steps"])
    assert "data.split_column=" in advice and "data.val_path=" in advice
