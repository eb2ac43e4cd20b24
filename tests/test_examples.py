"""The README's worked examples: your own data (an .npz file) and your own model (a residual MLP),
each one Python file plus one YAML file, trained through the real flow."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from practicum.run.build import build_datamodule

from conftest import ROOT, compose_train, run_cli, train

# each example, its two files, and the names by which other code would have to know about it
EXAMPLES = {
    "npz": (
        {"src/practicum/data/npz.py", "conf/data/npz.yaml"},
        r"NpzDataModule|practicum\.data\.npz|data[=:] ?npz\b",
    ),
    "residual_mlp": (
        {"src/practicum/nets/residual_mlp.py", "conf/model/residual_mlp.yaml"},
        r"ResidualMLP|residual_mlp",
    ),
}


@pytest.fixture
def digits_npz(tmp_path: Path) -> Path:
    """sklearn's 8x8 digits as images (N, 1, 8, 8) with integer labels, under the default keys."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path / "digits.npz"
    np.savez(path, x=digits.images[:, None].astype(np.float32), y=digits.target)
    return path


@pytest.fixture
def breast_cancer_npz(tmp_path: Path) -> Path:
    """30 float features per example, labels as names, under keys of the user's choosing."""
    from sklearn.datasets import load_breast_cancer

    cancer = load_breast_cancer()
    path = tmp_path / "cancer.npz"
    np.savez(path, features=cancer.data, labels=cancer.target_names[cancer.target])
    return path


def test_own_data_and_own_model_train_on_digits(tmp_path: Path, digits_npz: Path):
    overrides = ["data=npz", f"data.path={digits_npz}", "model=residual_mlp"]
    _, summary, run_dir = train(tmp_path, [*overrides, "trainer.max_epochs=5"])
    assert summary["status"] == "completed"
    # chance is 0.1 on ten balanced classes
    assert summary["metrics"]["val/acc"] > 0.9 and summary["metrics"]["test/acc"] > 0.9
    for name in ("summary.json", "metrics.csv", "curves.png", "report.md", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    assert "model=residual_mlp data=npz" in (run_dir / "report.md").read_text()


def test_own_data_with_named_arrays_and_label_names(tmp_path: Path, breast_cancer_npz: Path):
    overrides = [
        "data=npz",
        f"data.path={breast_cancer_npz}",
        "data.x_key=features",
        "data.y_key=labels",
        "model=residual_mlp",
    ]
    _, summary, _ = train(tmp_path, [*overrides, "trainer.max_epochs=5"])
    # always answering the larger class scores 0.63
    assert summary["metrics"]["val/acc"] > 0.9 and summary["metrics"]["test/acc"] > 0.9


def test_shapes_classes_and_normalization_come_from_the_file(
    tmp_path: Path, digits_npz: Path, breast_cancer_npz: Path
):
    cfg = compose_train(tmp_path, ["data=npz", f"data.path={digits_npz}", "model=residual_mlp"])
    images = build_datamodule(cfg)
    assert cfg.data.input_shape == [1, 8, 8] and cfg.data.num_classes == 10
    assert isinstance(images.mean, float) and isinstance(images.std, float)  # one for all pixels
    assert images.split_sizes() == {"train": 1257, "val": 270, "test": 270}

    named = ["data.x_key=features", "data.y_key=labels"]
    cfg = compose_train(tmp_path, ["data=npz", f"data.path={breast_cancer_npz}", *named])
    vectors = build_datamodule(cfg)
    assert cfg.data.input_shape == [30] and cfg.data.num_classes == 2
    assert vectors.mean.shape == vectors.std.shape == (30,)  # one mean and std per feature
    assert vectors.class_names == ["benign", "malignant"]


BAD_FILES = [
    ("missing file", "does not exist"),
    ("missing key", "no array 'labels'"),
    ("length mismatch", "x of shape (10, 3) and y of shape (9,)"),
]


@pytest.mark.parametrize(("case", "message"), BAD_FILES, ids=[case for case, _ in BAD_FILES])
def test_a_bad_file_is_one_clear_line(tmp_path: Path, digits_npz: Path, case: str, message: str):
    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, x=np.zeros((10, 3)), y=np.zeros(9, dtype=np.int64))
    args = {
        "missing file": [f"data.path={tmp_path / 'nope.npz'}"],
        "missing key": [f"data.path={digits_npz}", "data.y_key=labels"],
        "length mismatch": [f"data.path={mismatch}"],
    }[case]
    result = run_cli(
        "train.py",
        "data=npz",
        *args,
        "model=residual_mlp",
        f"paths.log_dir={tmp_path}/logs",
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "logs").glob("*/runs/*")) == [], "a refused run left its directory"


def test_help_lists_both_examples():
    result = run_cli("train.py", "--help")
    assert result.returncode == 0
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines() if ": " in line}
    assert re.search(r"\bnpz\b", lines["data"]) and "residual_mlp" in lines["model"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_example_is_one_python_file_and_one_yaml(example: str):
    files, names = EXAMPLES[example]
    # experiments may use an example and a search space is an optional extra: neither is needed
    optional = ("conf/experiment/", "conf/search/space/")
    mentions = {
        str(path.relative_to(ROOT))
        for path in [*ROOT.glob("src/**/*.py"), *ROOT.glob("conf/**/*.yaml")]
        if re.search(names, path.read_text())
        and not str(path.relative_to(ROOT)).startswith(optional)
    }
    assert mentions == files, "no other file of the project should need to know the example"


def test_a_model_without_its_own_search_space_searches_the_default_one():
    result = run_cli("train.py", "search=random", "model=residual_mlp", "--cfg", "hydra")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "searching conf/search/space/default.yaml" in result.stderr
    params = yaml.safe_load(result.stdout)["hydra"]["sweeper"]["params"]
    assert set(params) == {"optimizer.lr", "optimizer.weight_decay"}


@pytest.mark.slow
def test_a_random_search_over_own_data_and_model(tmp_path: Path, digits_npz: Path):
    result = run_cli(
        "train.py",
        "-m",
        "search=random",
        "search.n_trials=2",
        "data=npz",
        f"data.path={digits_npz}",
        "model=residual_mlp",
        "trainer.max_epochs=2",
        "diagnosis.baseline_model=null",
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (summary,) = tmp_path.glob("train/multiruns/*/summary.csv")
    rows = summary.read_text().splitlines()
    assert len(rows) == 3 and "optimizer.lr" in rows[0] and "optimizer.weight_decay" in rows[0]
