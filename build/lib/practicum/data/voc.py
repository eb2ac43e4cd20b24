"""Segmentation data in the Pascal VOC layout.

`data.root` holds `JPEGImages/<id>.jpg`, `SegmentationClass/<id>.png` (palette PNGs whose
pixel values are class ids; 255 marks object borders, ignored) and
`ImageSets/Segmentation/{train,val}.txt` (one id per line). Test: `test.txt` when it exists,
else a seeded `test_fraction` of train.txt. Images are resized to `image_size` square
(bilinear; masks nearest). A mask value >= num_classes (other than 255) is an error.
"""

from __future__ import annotations

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

VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]  # fmt: skip
IGNORE = 255


class VocSegmentationData(DenseData):
    problem = "segmentation"

    @classmethod
    def path_hint(cls, args: Mapping[str, Any]) -> str:
        return (
            "point data.root at a VOC folder with JPEGImages/, SegmentationClass/ "
            "and ImageSets/Segmentation/"
        )

    def __init__(
        self,
        root: str,
        test_fraction: Annotated[float, OpenFraction] = 0.15,
        split_seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        declared = self.declared["num_classes"]
        self.root = str(root)
        self.classes = len(VOC_CLASSES) if declared == "auto" else int(declared)
        self.test_fraction, self.split_seed = test_fraction, split_seed

    def describe(self) -> str:
        return f"the VOC folder {self.root!r}"

    def load_splits(self) -> dict[str, Examples]:
        names = VOC_CLASSES if self.classes == len(VOC_CLASSES) else []
        self.class_names = names or [f"class_{i}" for i in range(self.classes)]
        train, val = self._ids("train"), self._ids("val")
        if os.path.isfile(self._list_path("test")):
            test = self._ids("test")
        else:
            order = np.random.default_rng(self.split_seed).permutation(len(train))
            n_test = math.ceil(self.test_fraction * len(train))
            test = [train[i] for i in order[:n_test]]
            train = [train[i] for i in sorted(order[n_test:])]
        for image_id in sorted({*train, *val, *test}):  # a bad file fails now, not mid-training
            image_path, mask_path = self._paths(image_id)
            require_image(image_path)
            require_image(mask_path)
            try:
                with Image.open(mask_path) as mask:
                    labels = np.array(mask, dtype=np.int64)
            except (OSError, ValueError) as exc:
                raise UserError(
                    f"{mask_path} is not a readable mask ({exc}): replace or remove the file"
                ) from exc
            self._check_mask(labels, mask_path)
        splits = (("train", train), ("val", val), ("test", test))
        return {name: self._examples(ids) for name, ids in splits}

    def _list_path(self, split: str) -> str:
        return os.path.join(self.root, "ImageSets", "Segmentation", f"{split}.txt")

    def _ids(self, split: str) -> list[str]:
        path = self._list_path(split)
        if not os.path.isfile(path):
            raise UserError(
                f"{path} does not exist: data.root must be a VOC folder with JPEGImages/, "
                "SegmentationClass/ and ImageSets/Segmentation/{train,val}.txt"
            )
        with open(path) as handle:
            ids = [line.split()[0] for line in handle if line.strip()]
        for image_id in ids:
            for path in self._paths(image_id):
                if not os.path.isfile(path):
                    raise UserError(
                        f"{split}.txt lists {image_id!r} but {path} does not exist: "
                        f"add the file or remove the id from {split}.txt"
                    )
        return ids

    def _paths(self, image_id: str) -> tuple[str, str]:
        return (
            os.path.join(self.root, "JPEGImages", f"{image_id}.jpg"),
            os.path.join(self.root, "SegmentationClass", f"{image_id}.png"),
        )

    def _examples(self, ids: list[str]) -> Examples:
        size = (self.image_size, self.image_size)

        def load(i: int) -> tuple[torch.Tensor, torch.Tensor]:
            image_path, mask_path = self._paths(ids[i])
            with Image.open(image_path) as image:
                pixels = np.array(image.convert("RGB").resize(size, Image.BILINEAR))
            with Image.open(mask_path) as mask:
                labels = np.array(mask.resize(size, Image.NEAREST), dtype=np.int64)
            return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255, torch.from_numpy(labels)

        return Examples(load, len(ids))

    def _check_mask(self, labels: np.ndarray, path: str) -> None:
        if labels.ndim != 2:
            raise UserError(
                f"mask {path} has {labels.shape[-1]} channels: a mask is a one-channel (palette "
                "or grayscale) PNG whose pixel values are class ids"
            )
        bad = labels[(labels >= self.classes) & (labels != IGNORE)]
        if bad.size:
            raise UserError(
                f"mask {path} has class id {int(bad.max())} but data.num_classes={self.classes}: "
                f"set data.num_classes to at least {int(bad.max()) + 1} (255 marks ignored pixels)"
            )
