"""Segmentation: shapes masks, VOC-layout files the tests write, SegNet and FCN training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from practicum.data.voc import VocSegmentationData
from practicum.errors import UserError
from practicum.nets.segnet import SegNet

from conftest import compose_train, run_cli, train

FAST = ["debug=fast", "data.batch_size=4", "data.image_size=48"]


def write_voc(root: Path, count: int = 14, size: int = 60, bad_id: int | None = None) -> Path:
    """JPEGImages/*.jpg, SegmentationClass/*.png palette masks (255 borders), ImageSets lists."""
    from PIL import Image

    from practicum.data.synthetic_shapes import draw_scene

    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [224, 224, 192] * 252
    ids = [f"2007_{i:06d}" for i in range(count)]
    for image_id in ids:
        pixels, _, _, mask = draw_scene(rng, size, 2, 0.25, 0.5)
        mask = mask.astype(np.uint8)
        mask[:, 0] = 255  # an ignored border column, as VOC draws around objects
        Image.fromarray(pixels).save(root / "JPEGImages" / f"{image_id}.jpg")
        if bad_id is not None and image_id == ids[-1]:
            mask[0, 1] = bad_id
        png = Image.fromarray(mask, mode="P")
        png.putpalette(palette)
        png.save(root / "SegmentationClass" / f"{image_id}.png")
    lists = root / "ImageSets" / "Segmentation"
    (lists / "train.txt").write_text("\n".join(ids[:10]) + "\n")
    (lists / "val.txt").write_text("\n".join(ids[10:]) + "\n")
    return root


def test_segnet_reuses_pooling_indices_at_any_size():
    net = SegNet(num_classes=5, channels=[8, 16, 32], depth=1)
    assert sum(isinstance(m, torch.nn.MaxUnpool2d) for m in net.modules()) == 1
    assert net.pool.return_indices
    for height, width in ((64, 64), (45, 37)):
        assert net(torch.rand(2, 3, height, width)).shape == (2, 5, height, width)


def test_voc_layout_loads(tmp_path):
    data = VocSegmentationData(str(write_voc(tmp_path)), num_classes=4, image_size=32)
    data.setup()
    assert data.split_sizes() == {"train": 8, "val": 4, "test": 2}
    image, mask = data.splits["val"][0]
    assert image.shape == (3, 32, 32) and mask.shape == (32, 32) and mask.dtype == torch.int64
    assert set(mask.unique().tolist()) <= {0, 1, 2, 3, 255} and (mask == 255).any()


def test_voc_bad_input_is_one_clear_error(tmp_path):
    root = write_voc(tmp_path / "bad", bad_id=7)
    with pytest.raises(UserError, match="has class id 7 but data.num_classes=4"):
        VocSegmentationData(str(root), num_classes=4).setup()
    root = write_voc(tmp_path / "missing")
    (root / "JPEGImages" / "2007_000003.jpg").unlink()
    with pytest.raises(UserError, match="lists '2007_000003'.*does not exist"):
        VocSegmentationData(str(root), num_classes=4).setup()
    with pytest.raises(UserError, match="train.txt does not exist"):
        VocSegmentationData(str(tmp_path), num_classes=4).setup()


@pytest.mark.parametrize("model", ["segnet", "fcn"])
def test_segmenter_trains_on_voc_files(tmp_path, model):
    root = write_voc(tmp_path / "voc")
    value, summary, run_dir = train(
        tmp_path,
        [
            f"model={model}",
            "data=voc_segmentation",
            f"data.root={root}",
            "data.num_classes=4",
            *FAST,
        ],
    )
    metrics = summary["metrics"]
    for split in ("train", "val", "test"):
        assert (
            0.0 <= metrics[f"{split}/miou"] <= 1.0 and 0.0 <= metrics[f"{split}/pixel_acc"] <= 1.0
        )
        assert math.isfinite(metrics[f"{split}/loss"])
    assert summary["goal"]["metric"] == "val/miou" and value == metrics["val/miou"]
    assert (run_dir / "predictions.png").stat().st_size > 10_000 and (
        run_dir / "curves.png"
    ).is_file()


@pytest.mark.slow
def test_segnet_learns_the_shapes(tmp_path):
    _, summary, _ = train(
        tmp_path,
        ["model=segnet", "trainer.max_epochs=3", "data.train_size=128",
         "data.val_size=32", "data.test_size=16", "data.image_size=48", "seed=0"],
    )  # fmt: skip
    metrics = summary["metrics"]
    # below chance (ln 4 = 1.39) and above the all-background pixel share
    assert metrics["val/loss"] < 0.9 and metrics["val/pixel_acc"] > 0.7, metrics


def test_model_config_picks_its_data_and_mismatch_is_one_clear_error(tmp_path):
    assert compose_train(tmp_path, ["model=segnet"]).parts.data == "shapes_segmentation"
    cfg = compose_train(tmp_path, ["model=fcn", "data=voc_segmentation", "data.root=/x"])
    assert cfg.parts.data == "voc_segmentation"
    result = run_cli("train.py", "model=segnet", "data=digits", f"paths.root_dir={tmp_path}")
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(lines) == 1 and "segmentation" in lines[0], lines
