"""Detection: shapes scenes, COCO-format files the tests write, Faster R-CNN and RetinaNet training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from practicum.data.coco import CocoDetectionData
from practicum.data.synthetic_shapes import ShapesDetectionData, draw_scene
from practicum.errors import UserError

from conftest import compose_train, run_cli, train

FAST = [
    "debug=fast",
    "trainer.limit_train_batches=3",
    "data.batch_size=4",
]


def write_coco(root: Path, count: int = 16, size: int = 96) -> tuple[Path, Path]:
    """Shapes scenes saved as PNG/JPEG files plus an instances json in COCO's layout."""
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(count):
        pixels, boxes, labels, _ = draw_scene(rng, size, 3, 0.2, 0.45)
        name = f"{i:04d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(pixels).save(images_dir / name)
        images.append({"id": 100 + i, "file_name": name, "width": size, "height": size})
        for box, label in zip(boxes.tolist(), labels.tolist(), strict=True):
            x0, y0, x1, y1 = box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": 100 + i,
                    "category_id": 10 * label,  # ids need not be contiguous
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": 10 * k, "name": n} for k, n in enumerate(["box", "disc", "wedge"], 1)]
    ann_file = root / "instances.json"
    ann_file.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return images_dir, ann_file


def test_shapes_scenes_are_seeded_and_boxes_are_tight():
    data = ShapesDetectionData(train_size=6, val_size=3, test_size=3, image_size=64)
    data.setup()
    again = ShapesDetectionData(train_size=6, val_size=3, test_size=3, image_size=64)
    again.setup()
    assert data.num_classes == 4 and data.split_sizes() == {"train": 6, "val": 3, "test": 3}
    image, target = data.splits["train"][0]
    assert torch.equal(image, again.splits["train"][0][0])
    assert image.shape == (3, 64, 64) and image.min() >= 0 and image.max() <= 1
    _, _, _, mask = draw_scene(np.random.default_rng(3), 64, 3, 0.2, 0.4)
    boxes = draw_scene(np.random.default_rng(3), 64, 3, 0.2, 0.4)[1]
    for x0, y0, x1, y1 in boxes.astype(int):
        assert mask[y0:y1, x0:x1].any() and mask[y0, x0:x1].any() and mask[y1 - 1, x0:x1].any()
    assert target["labels"].min() >= 1 and target["boxes"].shape[1] == 4


def test_coco_files_load_with_contiguous_labels(tmp_path):
    images_dir, ann_file = write_coco(tmp_path)
    data = CocoDetectionData(str(images_dir), str(ann_file), batch_size=4)
    data.setup()
    assert data.class_names == ["background", "box", "disc", "wedge"] and data.num_classes == 4
    assert sum(data.split_sizes().values()) == 16
    images, targets = next(iter(data.loader("train")))
    assert len(images) == 4 and images[0].shape == (3, 96, 96)
    assert all(int(t["labels"].min()) >= 1 and int(t["labels"].max()) <= 3 for t in targets)


def test_coco_bad_input_is_one_clear_error(tmp_path):
    images_dir, ann_file = write_coco(tmp_path, count=4)
    with pytest.raises(UserError, match="data.ann_file=.*does not exist"):
        CocoDetectionData(str(images_dir), str(tmp_path / "nope.json")).setup()
    (images_dir / "0001.png").unlink()
    with pytest.raises(UserError, match="names image '0001.png'.*does not exist"):
        CocoDetectionData(str(images_dir), str(ann_file)).setup()


@pytest.mark.parametrize("model", ["faster_rcnn", "retinanet"])
def test_detector_trains_on_coco_files(tmp_path, model):
    images_dir, ann_file = write_coco(tmp_path / "coco")
    value, summary, run_dir = train(
        tmp_path,
        [f"model={model}", "data=coco", f"data.root={images_dir}", f"data.ann_file={ann_file}",
         "data.image_size=96", *FAST],
    )  # fmt: skip
    metrics = summary["metrics"]
    for split in ("train", "val", "test"):
        assert 0.0 <= metrics[f"{split}/map"] <= 1.0 and math.isfinite(metrics[f"{split}/loss"])
    assert summary["goal"]["metric"] == "val/map" and value == metrics["val/map"]
    assert (run_dir / "predictions.png").stat().st_size > 10_000
    assert (run_dir / "curves.png").is_file()
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss" in header and "val/loss" in header and "val/map_50" in header
    component = "train/loss_classifier" if model == "faster_rcnn" else "train/classification"
    assert component in header


@pytest.mark.slow
def test_shapes_detection_learns(tmp_path):
    """A few epochs on a small shapes set: the boxes start to be found."""
    _, summary, _ = train(
        tmp_path,
        ["model=faster_rcnn", "trainer.max_epochs=4", "data.train_size=96",
         "data.val_size=16", "data.test_size=8", "data.image_size=96", "seed=0"],
    )  # fmt: skip
    assert summary["metrics"]["val/map_50"] > 0.05, summary["metrics"]


def test_model_config_picks_its_data_and_command_line_wins(tmp_path):
    assert compose_train(tmp_path, ["model=faster_rcnn"]).parts.data == "shapes_detection"
    cfg = compose_train(tmp_path, ["model=faster_rcnn", "data=coco"])
    assert cfg.parts.data == "coco"


def test_detector_on_classification_data_is_one_clear_error(tmp_path):
    result = run_cli("train.py", "model=faster_rcnn", "data=digits", f"paths.root_dir={tmp_path}")
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(lines) == 1 and "detection" in lines[0] and "classification" in lines[0]
