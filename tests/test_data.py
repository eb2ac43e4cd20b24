"""Data: stratified, seeded, disjoint splits; train-only normalization; the CSV format; clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from practicum.data.batches import TensorBatches
from practicum.errors import UserError
from practicum.run.build import build_datamodule

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


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("f0;f1;label", "has one column, 'f0;f1;label': its values look separated by ';'"),
        ("f0\tf1\tlabel", "its values look separated by '\\t', not commas"),
        ("f0,f0,label", "has more than one column named 'f0': give every column its own name"),
    ],
)
def test_a_header_that_cannot_name_the_columns_is_one_line(tmp_path: Path, header, says):
    mark = header[2]
    path = tmp_path / "t.csv"
    path.write_text(header + "\n" + "".join(f"{i}{mark}1{mark}{i % 2}\n" for i in range(30)))
    cfg = compose_train(tmp_path, ["data=csv", f"data.path={path}", "model=mlp"])
    with pytest.raises(UserError, match=re.escape(says)):
        build_datamodule(cfg)


def test_a_spreadsheets_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path):
    path = tmp_path / "t.csv"
    rows = "".join(f"{i % 2},{i}\n" for i in range(30))
    path.write_text("\ufefflabel,f0\n" + rows, encoding="utf-8")
    dm = build_datamodule(compose_train(tmp_path, ["data=csv", f"data.path={path}", "model=mlp"]))
    assert dm.num_classes == 2 and dm.input_shape == [1]


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


def test_a_split_too_small_for_every_class_is_shuffled_not_stratified(tmp_path: Path):
    # ten classes of three examples: a test split of five cannot hold every class
    path = tmp_path / "ten.csv"
    path.write_text("f0,label\n" + "".join(f"{i},{i % 10}\n" for i in range(30)))
    dm = build_datamodule(compose_train(tmp_path, ["data=csv", f"data.path={path}", "model=mlp"]))
    assert dm.split_sizes() == {"train": 20, "val": 5, "test": 5}


def test_a_training_pass_never_ends_in_a_batch_of_one():
    x = torch.arange(17.0)[:, None]
    training = TensorBatches((x,), batch_size=8, shuffle=True, seed=0)
    assert len(training) == 2 and [len(b[0]) for b in training] == [8, 8]
    # evaluation sees every example
    assert [len(b[0]) for b in TensorBatches((x,), batch_size=8)] == [8, 8, 1]


def test_csv_problems_name_the_lines(tmp_path: Path):
    path = tmp_path / "t.csv"
    rows = "".join(f"{i},{i % 2}\n" for i in range(30))
    path.write_text("f0,label\n" + rows + ",1\n" + "nan,0\n")
    cfg = compose_train(tmp_path, ["data=csv", f"data.path={path}", "model=mlp"])
    with pytest.raises(UserError, match=r"has empty, NaN or inf values in lines 32, 33: fix"):
        build_datamodule(cfg)
    path.write_text("f0,label\n" + rows + "1.5,7\n")
    with pytest.raises(UserError, match=r"too few examples of class '7' \(1\).*data.label_column"):
        build_datamodule(cfg)


def test_image_files_map_onto_the_value_range_of_in_memory_images(tmp_path: Path):
    from PIL import Image

    dm = build_datamodule(compose_train(tmp_path))
    assert dm.takes_images and dm.value_range == (0.0, 16.0)
    image = dm.splits["val"][0][0]  # normalized, (1, 8, 8)
    raw = image.numpy() * dm.std + dm.mean  # 0..16
    Image.fromarray((raw[0] * 255 / 16).round().astype("uint8")).save(tmp_path / "digit.png")
    encoded = dm.encode_images([tmp_path / "digit.png"])
    assert encoded.shape == (1, 1, 8, 8) and torch.allclose(encoded[0], image, atol=0.05)
