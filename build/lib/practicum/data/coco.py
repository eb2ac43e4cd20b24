"""Detection data in COCO format: one annotation json plus a folder of images.

`data.ann_file` is the json (`images`, `annotations` with `bbox: [x, y, w, h]`, `categories`);
`data.root` the folder its `file_name`s are relative to. Category ids map, in id order, to
labels 1..K (0 is the background). Crowd regions and empty boxes are skipped. Images are split
by a seeded shuffle into train/val/test (`val_fraction`, `test_fraction`). Every referenced
image must exist; this is checked before training starts.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
import torch
from PIL import Image

from practicum.config.constraints import OpenFraction
from practicum.data.base import require_image
from practicum.data.dense import DenseData, Examples
from practicum.errors import UserError


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class CocoDetectionData(DenseData):
    problem = "detection"

    @classmethod
    def path_hint(cls, args: Mapping[str, Any]) -> str:
        return "point data.root at the folder of images the json's file_names are relative to"

    def __init__(
        self,
        root: str,
        ann_file: str,
        val_fraction: Annotated[float, OpenFraction] = 0.15,
        test_fraction: Annotated[float, OpenFraction] = 0.15,
        split_seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.root, self.ann_file = str(root), str(ann_file)
        self.val_fraction, self.test_fraction, self.split_seed = (
            val_fraction,
            test_fraction,
            split_seed,
        )

    def describe(self) -> str:
        return f"the COCO annotations {self.ann_file!r}"

    def load_splits(self) -> dict[str, Examples]:
        index = self._read_annotations()
        categories = sorted(index["categories"], key=lambda c: c["id"])
        label_of = {c["id"]: i + 1 for i, c in enumerate(categories)}
        self.class_names = ["background", *(str(c.get("name", c["id"])) for c in categories)]
        boxes: dict[int, list] = {image["id"]: [] for image in index["images"]}
        for ann in index["annotations"]:
            x, y, w, h = (float(v) for v in ann["bbox"])
            if ann.get("iscrowd", 0) or w < 1 or h < 1 or ann["image_id"] not in boxes:
                continue
            if ann["category_id"] not in label_of:
                raise UserError(
                    f"{self.ann_file}: annotation {ann.get('id')} has category_id "
                    f"{ann['category_id']}, which is not in `categories`: add it there"
                )
            boxes[ann["image_id"]].append(([x, y, x + w, y + h], label_of[ann["category_id"]]))
        if not any(boxes.values()):
            raise UserError(
                f"data.ann_file={self.ann_file!r} has no boxes on its images (crowd regions and "
                "boxes under 1 pixel do not count): add annotations"
            )
        records = []
        for image in index["images"]:
            path = os.path.join(self.root, str(image["file_name"]))
            if not os.path.isfile(path):
                raise UserError(
                    f"{self.ann_file} names image {image['file_name']!r}, but {path} does not "
                    "exist: point data.root at the folder the file_names are relative to"
                )
            require_image(path)
            found = boxes[image["id"]]
            target = {
                "boxes": torch.tensor([b for b, _ in found], dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor([label for _, label in found], dtype=torch.int64),
            }
            records.append((path, target))
        return self._split(records)

    def _read_annotations(self) -> dict:
        if not os.path.isfile(self.ann_file):
            raise UserError(
                f"data.ann_file={self.ann_file!r} does not exist: "
                "point it at a COCO-format annotation json (e.g. instances_train2017.json)"
            )
        try:
            with open(self.ann_file) as handle:
                index = json.load(handle)
        except (OSError, ValueError) as exc:
            raise UserError(f"data.ann_file={self.ann_file!r} is not readable json: {exc}") from exc
        keys = ("images", "annotations", "categories")
        missing = [key for key in keys if key not in index] if isinstance(index, dict) else keys
        if missing:
            raise UserError(
                f"data.ann_file={self.ann_file!r} lacks {', '.join(missing)}: a COCO json has "
                "images, annotations and categories"
            )
        self._check_entries(index)
        return index

    def _check_entries(self, index: dict) -> None:
        """Every entry has the keys the loader reads; every box is four finite numbers."""
        what = f"data.ann_file={self.ann_file!r}"
        needs = {
            "images": ("id", "file_name"),
            "annotations": ("image_id", "category_id", "bbox"),
            "categories": ("id",),
        }
        for key, fields in needs.items():
            entries = index[key]
            if not isinstance(entries, list):
                raise UserError(f"{what}: {key} is not a list: a COCO json lists its {key}")
            for i, entry in enumerate(entries):
                lacking = [f for f in fields if not isinstance(entry, dict) or f not in entry]
                if lacking:
                    raise UserError(
                        f"{what}: {key}[{i}] lacks {', '.join(lacking)}: each of {key} needs "
                        f"{', '.join(fields)}"
                    )
        for key in ("images", "categories"):
            if not index[key]:
                raise UserError(f"{what} lists no {key}: add the {key} and their annotations")
        for i, ann in enumerate(index["annotations"]):
            box = ann["bbox"]
            numbers = isinstance(box, list) and len(box) == 4
            if not numbers or not all(_finite(v) for v in box):
                raise UserError(
                    f"{what}: annotations[{i}] has bbox {box!r}: need [x, y, width, height], "
                    "four finite numbers"
                )

    def _split(self, records: list) -> dict[str, Examples]:
        order = np.random.default_rng(self.split_seed).permutation(len(records))
        n_test = math.ceil(self.test_fraction * len(records))
        n_val = math.ceil(self.val_fraction * len(records))
        if len(records) - n_test - n_val < 2:  # batch norm cannot train on one image
            raise UserError(
                f"data.ann_file={self.ann_file!r} lists {len(records)} images, too few for train, "
                f"val and test splits with data.val_fraction={self.val_fraction:g} and "
                f"data.test_fraction={self.test_fraction:g}: add images (2 to train on at least) or lower "
                "the fractions"
            )
        parts = {
            "test": order[:n_test],
            "val": order[n_test : n_test + n_val],
            "train": order[n_test + n_val :],
        }

        def loader(indices):
            def load(i: int):
                path, target = records[int(indices[i])]
                with Image.open(path) as image:
                    pixels = np.array(image.convert("RGB"))
                return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255, target

            return Examples(load, len(indices))

        return {name: loader(indices) for name, indices in parts.items()}
