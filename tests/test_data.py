"""Data: stratified, seeded, disjoint splits; train-only normalization; the CSV format; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from practicum.build import build_datamodule
from practicum.data.batches import TensorBatches
from practicum.errors import UserError

from conftest import compose_train


@pytest.mark.parametrize(
    ("name", "n", "shape", "classes"),
    [("digits", 1797, [1, 8, 8], 10), ("wine", 178, [13], 3), ("breast_cancer", 569, [30], 2)],
)
def test_bundled_splits(tmp_path: Path, name: str, n: int, shape: list[int], classes: int):
    cfg = compose_train(tmp_path, [f"data={name}", "model=linear"])
    dm = build_datamodule(cfg)
    sizes = dm.split_sizes()
    assert sum(sizes.values()) == n
    assert dm.input_shape == shape and dm.num_classes == classes
    assert sizes["val"] == pytest.approx(n * cfg.data.val_fraction, abs=2)
    assert sizes["test"] == pytest.approx(n * cfg.data.test_fraction, abs=2)
    # stratified: each split's class proportions match the whole data set's
    all_labels = torch.cat([dm.splits[s][1] for s in ("train", "val", "test")])
    overall = torch.bincount(all_labels, minlength=classes).float() / n
    for split in ("train", "val", "test"):
        labels = dm.splits[split][1]
        share = torch.bincount(labels, minlength=classes).float() / len(labels)
        assert torch.allclose(share, overall, atol=0.05)
    # splits are disjoint: no example appears twice
    rows = {tuple(x.flatten().tolist()) for s in ("train", "val", "test") for x in dm.splits[s][0]}
    assert len(rows) >= n - 5  # digits has a handful of exact duplicate images in the source data
    # normalization uses training statistics only
    train_x = dm.splits["train"][0]
    assert abs(float(train_x.mean())) < 1e-4


def test_split_is_fixed_by_split_seed_not_by_seed(tmp_path: Path):
    a = build_datamodule(compose_train(tmp_path, ["seed=1"])).splits["val"][1]
    b = build_datamodule(compose_train(tmp_path, ["seed=2"])).splits["val"][1]
    c = build_datamodule(compose_train(tmp_path, ["data.split_seed=5"])).splits["val"][1]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_batches_cover_every_example_once_per_epoch():
    x = torch.arange(10).float().unsqueeze(1)
    batches = TensorBatches((x, torch.arange(10)), batch_size=4, shuffle=True, seed=0)
    assert len(batches) == 3
    first = torch.cat([b[1] for b in batches])
    second = torch.cat([b[1] for b in batches])
    assert sorted(first.tolist()) == list(range(10)) == sorted(second.tolist())
    assert first.tolist() != second.tolist(), "reshuffled each epoch"
    again = TensorBatches((x, torch.arange(10)), batch_size=4, shuffle=True, seed=0)
    assert torch.cat([b[1] for b in again]).tolist() == first.tolist(), "same seed, same order"


def test_csv_table(tmp_path: Path, csv_table: Path):
    cfg = compose_train(tmp_path, ["data=csv", f"data.path={csv_table}", "model=mlp"])
    dm = build_datamodule(cfg)
    assert dm.num_classes == 3 and dm.input_shape == [13]
    assert dm.class_names == ["class_0", "class_1", "class_2"]
    assert cfg.data.num_classes == 3 and cfg.model.net.in_shape == [13], (
        "auto shapes flow into the net"
    )


def test_csv_without_label_column(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    cfg = compose_train(tmp_path, ["data=csv", f"data.path={path}", "model=mlp"])
    with pytest.raises(UserError, match="has no column 'label'"):
        build_datamodule(cfg)


def test_declared_num_classes_must_match_the_data(tmp_path: Path):
    cfg = compose_train(tmp_path, ["data.num_classes=7"])
    with pytest.raises(UserError, match="data.num_classes=7 but data=digits has 10 classes"):
        build_datamodule(cfg)


def test_empty_csv(tmp_path: Path):
    path = tmp_path / "empty.csv"
    path.write_text("f0,label\n")
    cfg = compose_train(tmp_path, ["data=csv", f"data.path={path}", "model=mlp"])
    with pytest.raises(UserError, match="holds no examples"):
        build_datamodule(cfg)
