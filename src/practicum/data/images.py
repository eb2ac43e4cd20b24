"""Image classification data from files on disk: MNIST, Fashion-MNIST, CIFAR-10/100 and ImageFolder.

torchvision's dataset classes read the standard files; nothing downloads unless `download=true`.
Splits: val is a seeded, stratified part of the official train set; test is the official test set.
ImageFolder: `<root>/train` + `<root>/test` when both exist, else test is split off `<root>` too
(`test_fraction`). Normalization: the published per-channel statistics for the standard datasets;
ImageFolder computes them from up to 256 training images (`normalize: imagenet` for pretrained
nets, `none` to skip). Augmentation (transforms v2) applies to `train_dataloader()` only; `loader()`
without shuffling, as used for evaluation, gives the clean images of every split. Images stay uint8
through the per-image transforms; the loaders' collate scales and normalizes whole batches.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, default_collate
from torchvision import datasets
from torchvision.transforms import v2

from practicum.config.constraints import Constraint, OpenFraction, PositiveInt, at_least, one_of
from practicum.data.base import SplitDataModule, lone_last_batch, require_image
from practicum.data.position import ShuffledPasses, seeded
from practicum.data.splits import check_examples, split_off, subset
from practicum.errors import UserError

STATS = {  # published per-channel mean/std of the training sets
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _files_checked(cls: type) -> type:
    """A CIFAR class that checks that its files exist instead of hashing them (subsets load too)."""
    lists = {k: [(name, None) for name, _ in getattr(cls, k)] for k in ("train_list", "test_list")}
    return type(cls.__name__, (cls,), {**lists, "meta": {**cls.meta, "md5": None}})


TENSOR_SETS = {
    "mnist": datasets.MNIST,
    "fashion_mnist": datasets.FashionMNIST,
    "cifar10": _files_checked(datasets.CIFAR10),
    "cifar100": _files_checked(datasets.CIFAR100),
}
EXPECTED = {  # a file that must exist under root (what the files are)
    "mnist": "MNIST/raw/train-images-idx3-ubyte (the standard MNIST idx files)",
    "fashion_mnist": "FashionMNIST/raw/train-images-idx3-ubyte (the Fashion-MNIST idx files)",
    "cifar10": "cifar-10-batches-py/data_batch_1 (the CIFAR-10 python pickle batches)",
    "cifar100": "cifar-100-python/train (the CIFAR-100 python pickle files)",
}


class _Images(Dataset):
    """`(transform(image), label)` for the chosen indices of uint8 images (tensors or PIL via a loader)."""

    def __init__(self, source, targets: np.ndarray, indices: np.ndarray, transform) -> None:
        self.source, self.targets = source, targets
        self.indices, self.transform = indices, transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        index = int(self.indices[i])
        with seeded(i):  # augmentation by (seed, pass, example), whichever worker loads it
            return self.transform(self.source(index)), int(self.targets[index])


class SquareSize:
    """Resize (the shorter side) and center-crop to size x size; an image already that size passes
    as it is, without the two transforms' per-call cost."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.steps = v2.Compose([v2.Resize(size), v2.CenterCrop(size)])

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if tuple(image.shape[-2:]) == (self.size, self.size):
            return image
        return self.steps(image)


class BatchFinish:
    """The loaders' collate: stack the uint8 images, then scale to [0, 1] and normalize the whole
    batch at once (the numbers per-image transforms give, in one call instead of two per image);
    strong augmentation's random erasing follows, image by image."""

    def __init__(self, stats: tuple[list[float], list[float]] | None, erasing=None) -> None:
        self.stats, self.erasing = stats, erasing

    def images(self, x: torch.Tensor) -> torch.Tensor:
        x = v2.functional.to_dtype(x.as_subclass(torch.Tensor), torch.float32, scale=True)
        if self.stats is not None:
            x = v2.functional.normalize(x, *self.stats)
        if self.erasing is not None:
            x = torch.stack([self.erasing(image) for image in x])
        return x

    def __call__(self, samples: list) -> list:
        x, y = default_collate(samples)
        return [self.images(x), y]


class ImageFiles:
    """Image `i` of a folder's file list, decoded to PIL in the given mode (`L` or `RGB`).

    The paths sit in one NumPy array, not a list of Python strings: a DataLoader worker forked
    from the main process touches no per-file object, so its memory does not grow with the folder
    (reference counts written into a shared list copy its pages, worker by worker). A plain class,
    not a closure, so that workers started by spawn or forkserver can unpickle it."""

    def __init__(self, samples: Sequence[tuple[str, int]], mode: str) -> None:
        self.paths = np.array([path for path, _ in samples])
        self.mode = mode

    def __len__(self) -> int:
        return len(self.paths)

    def __call__(self, i: int) -> Image.Image:
        path = str(self.paths[i])
        try:
            with Image.open(path) as image:
                return image.convert(self.mode)
        except OSError as exc:  # truncated or not an image at all
            raise UserError(
                f"{path} is not a readable image ({exc}): replace or remove the file"
            ) from exc


def default_workers() -> int:
    """`num_workers: auto`: one loader process per CPU this process may use, less the one that
    runs the training step, at most 8 (0 on a single CPU: loading then shares the step's core).
    In a SLURM job, the CPUs are the task's (SLURM_CPUS_PER_TASK), not the node's."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit():
        cpus = int(slurm)
    elif hasattr(os, "sched_getaffinity"):
        cpus = len(os.sched_getaffinity(0))
    else:
        cpus = os.cpu_count() or 1
    return max(0, min(8, cpus - 1))


WORKERS = Constraint(
    "must be a whole number >= 0, or auto",
    lambda v: v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "auto",
)


class TorchvisionImageData(SplitDataModule):
    @classmethod
    def path_hint(cls, args: Mapping[str, Any]) -> str:
        dataset = args.get("dataset", "mnist")
        if dataset == "image_folder":
            return (
                "point data.root at a folder with one subfolder of images per class "
                "(or train/ and test/ folders of those)"
            )
        holds = EXPECTED.get(dataset, "the dataset's files")
        return (
            f"point data.root at a folder holding {holds} (or pass data.download=true with network)"
        )

    def __init__(
        self,
        dataset: Annotated[str, one_of(*TENSOR_SETS, "image_folder")] = "mnist",
        root: str = "data/mnist",
        download: bool = False,
        batch_size: Annotated[int, PositiveInt] = 128,
        val_fraction: Annotated[float, OpenFraction] = 0.1,
        test_fraction: Annotated[float, OpenFraction] = 0.15,
        split_seed: int = 0,
        train_subset: Annotated[int, at_least(2)] | None = None,
        augment: Annotated[str, one_of("none", "standard", "strong")] = "standard",
        normalize: Annotated[str, one_of("auto", "imagenet", "none")] = "auto",
        image_size: Annotated[int, PositiveInt] = 64,
        channels: Annotated[int, one_of(1, 3)] = 3,
        num_classes: int | str = "auto",
        input_shape: Sequence[int] | str = "auto",
        num_workers: Annotated[int | Literal["auto"], WORKERS] = 0,
        pin_memory: bool | str = "auto",
        persistent_workers: bool = True,
    ) -> None:
        super().__init__()
        self.dataset, self.root, self.download = dataset, str(root), download
        self.batch_size, self.split_seed, self.train_subset = batch_size, split_seed, train_subset
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.augment, self.normalize = augment, normalize
        self.image_size, self.channels = image_size, channels
        self.declared = {"num_classes": num_classes, "input_shape": input_shape}
        self.num_workers = default_workers() if num_workers == "auto" else num_workers
        self.persistent_workers = persistent_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory == "auto" else bool(pin_memory)
        self.num_classes: int = 0
        self.input_shape: list[int] = []
        self.class_names: list[str] = []
        self.splits: dict[str, Dataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        parts = self._load_folder() if self.dataset == "image_folder" else self._load_tensors()
        parts["train"] = self._subset(*parts["train"])
        self.num_classes = len(self.class_names)
        self._check_declared()
        mean, std = self._statistics(parts)
        stats = (mean, std) if self.normalize != "none" else None
        self.finish = BatchFinish(stats)
        erasing = v2.RandomErasing(p=0.25) if self.augment == "strong" else None
        self.finish_augmented = BatchFinish(stats, erasing)
        plain = v2.Compose(self.base or [v2.Identity()])
        augmented = v2.Compose([*self.base, *self._augmentation()] or [v2.Identity()])
        self.splits = {
            name: _Images(source, targets, indices, plain)
            for name, (source, targets, indices) in parts.items()
        }
        source, targets, indices = parts["train"]
        self.splits["train_augmented"] = _Images(source, targets, indices, augmented)

    def _load_tensors(self) -> dict:
        cls, expected = TENSOR_SETS[self.dataset], EXPECTED[self.dataset]
        if not self.download and not os.path.isfile(os.path.join(self.root, expected.split()[0])):
            raise UserError(
                f"data.root={self.root!r} lacks {os.path.join(self.root, expected)}: "
                "put the files there, or pass data.download=true with network"
            )
        try:
            train = cls(self.root, train=True, download=self.download)
            test = cls(self.root, train=False, download=self.download)
        except Exception as exc:  # torchvision raises many kinds for a partial or corrupt file
            raise UserError(f"cannot read {self.dataset} files in {self.root!r}: {exc}") from exc

        def images(ds) -> torch.Tensor:  # uint8, (n, C, H, W)
            x = torch.as_tensor(np.asarray(ds.data))
            return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()

        self.class_names = [str(c) for c in train.classes]
        x_train, x_test = images(train), images(test)
        y_train, y_test = np.asarray(train.targets), np.asarray(test.targets)
        what = f"data.root={self.root!r} ({self.dataset})"
        check_examples(what, y_train, self.class_names, self.val_fraction, None)
        if len(y_test) == 0:
            raise UserError(
                f"{what} has no test images: put the test files beside the training files"
            )
        self.input_shape = list(x_train.shape[1:])
        self.base = []
        train_idx, val_idx = self._stratified(np.arange(len(y_train)), y_train, self.val_fraction)
        return {
            "train": (x_train.__getitem__, y_train, train_idx),
            "val": (x_train.__getitem__, y_train, val_idx),
            "test": (x_test.__getitem__, y_test, np.arange(len(y_test))),
        }

    def _load_folder(self) -> dict:
        layout = "one subfolder of images per class, or train/, val/ and test/ folders of those"
        split_dirs = [os.path.join(self.root, s) for s in ("train", "test")]
        separate = all(os.path.isdir(d) for d in split_dirs)
        val_dir = os.path.join(self.root, "val")
        own_val = separate and os.path.isdir(val_dir)
        mode = {1: "L", 3: "RGB"}.get(self.channels)
        if mode is None:
            raise UserError(f"data.channels={self.channels} is invalid: use 1 or 3")

        check_links(self.root)

        def folder(path: str) -> datasets.ImageFolder:
            try:
                return datasets.ImageFolder(path)  # its file list; ImageFiles decodes
            except (FileNotFoundError, OSError) as exc:
                raise UserError(f"data.root={self.root!r} lacks {layout}: {exc}") from exc

        self.input_shape = [self.channels, self.image_size, self.image_size]
        self.base = [v2.ToImage(), SquareSize(self.image_size)]
        if separate:
            train, test = folder(split_dirs[0]), folder(split_dirs[1])
            val = folder(val_dir) if own_val else train
            for other, path in ((test, split_dirs[1]), (val, val_dir)):
                if other.classes != train.classes:
                    raise UserError(
                        f"{path} has classes {other.classes} but {split_dirs[0]} has "
                        f"{train.classes}: use the same class subfolders in each"
                    )
        else:
            train = test = val = folder(self.root)
        self.class_names = list(train.classes)
        y_train, y_test = np.asarray(train.targets), np.asarray(test.targets)
        for path, _ in (
            train.samples + (test.samples if separate else []) + (val.samples if own_val else [])
        ):
            require_image(path)
        check_examples(
            f"data.root={self.root!r}" + (" (its train/ folder)" if separate else ""),
            y_train,
            self.class_names,
            self.val_fraction,
            None if separate else self.test_fraction,
            " (one subfolder of images per class)",
        )
        rest = np.arange(len(y_train))
        if separate:
            test_idx = np.arange(len(y_test))
        else:
            rest, test_idx = self._stratified(rest, y_train, self.test_fraction)
        train_source, test_source = ImageFiles(train.samples, mode), ImageFiles(test.samples, mode)
        if own_val:
            # val/ holds its own images, drawn like the test images: nothing is cut from train/
            y_val = np.asarray(val.targets)
            if len(y_val) == 0:
                raise UserError(
                    f"{val_dir} holds no images: put validation images in its class folders"
                )
            val_source = ImageFiles(val.samples, mode)
            return {
                "train": (train_source, y_train, rest),
                "val": (val_source, y_val, np.arange(len(y_val))),
                "test": (test_source, y_test, test_idx),
            }
        val_share = self.val_fraction / (1.0 - (0.0 if separate else self.test_fraction))
        train_idx, val_idx = self._stratified(rest, y_train, val_share)
        return {
            "train": (train_source, y_train, train_idx),
            "val": (train_source, y_train, val_idx),
            "test": (test_source, y_test, test_idx),
        }

    def _subset(self, source, targets: np.ndarray, indices: np.ndarray) -> tuple:
        """`train_subset=N`: N training images (stratified), same val/test; how does error scale with data?"""
        if self.train_subset is None or self.train_subset >= len(indices):
            return source, targets, indices
        kept = subset(indices, targets, self.train_subset, self.split_seed)
        return source, targets, np.sort(kept)

    def _stratified(self, indices: np.ndarray, y: np.ndarray, fraction: float):
        return split_off(indices, y, fraction, self.split_seed)

    def _check_declared(self) -> None:
        found = {"num_classes": self.num_classes, "input_shape": self.input_shape}
        for key, declared in self.declared.items():
            if declared == "auto":
                continue
            value = int(declared) if key == "num_classes" else list(declared)
            if value != found[key]:
                raise UserError(
                    f"data.{key}={value} but {self.dataset} under {self.root!r} has {found[key]}: "
                    f"set data.{key}={found[key]} (or auto)"
                )

    def _statistics(self, parts: dict) -> tuple[list[float], list[float]]:
        if self.normalize == "imagenet":
            mean, std = IMAGENET
            if self.input_shape[0] == 1:
                return [sum(mean) / 3], [sum(std) / 3]
            return list(mean), list(std)
        if self.dataset in STATS:
            return [list(s) for s in STATS[self.dataset]]
        if self.normalize == "none":
            return [0.0], [1.0]
        source, _, indices = parts["train"]
        sample = np.random.default_rng(self.split_seed).permutation(indices)[:256]
        to_float = v2.Compose([*self.base, v2.ToDtype(torch.float32, scale=True)])
        x = torch.stack([to_float(source(int(i))) for i in sample])
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return x.mean(dim=(0, 2, 3)).tolist(), std.tolist()

    def _augmentation(self) -> list:
        if self.augment == "none":
            return []
        size = self.input_shape[-1]
        if self.dataset in ("mnist", "fashion_mnist"):
            steps = [v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))]
        else:
            steps = [v2.RandomCrop(size, padding=max(1, size // 8)), v2.RandomHorizontalFlip()]
        if self.augment == "strong" and self.input_shape[0] == 3:
            steps += [v2.RandAugment(num_ops=2, magnitude=9)]
        return steps

    takes_images = True  # predict.py may pass image files to encode_images

    def encode_images(self, paths: Sequence[Path | str]) -> torch.Tensor:
        """Image files preprocessed as the evaluation images were (size, channels, normalization)."""
        mode = "L" if self.input_shape[0] == 1 else "RGB"
        size = list(self.input_shape[1:])
        batch = []
        for path in paths:
            try:
                with Image.open(path) as image:
                    pixels = v2.functional.pil_to_tensor(image.convert(mode))
            except OSError as exc:
                raise UserError(f"{path} is not a readable image ({exc})") from exc
            if not self.base and list(pixels.shape[1:]) != size:
                pixels = v2.functional.resize(pixels, size, antialias=True)
            batch.append(self.splits["val"].transform(pixels))
        return self.finish.images(torch.stack(batch))

    @property
    def explicit_splits_hint(self) -> str | None:
        """How validation images drawn like the test images are given (an image folder only)."""
        if self.dataset != "image_folder":
            return None
        return f"put them in {self.root}/val/<class>/ beside train/ and test/ (val/ is then not cut from train/)"

    def split_sizes(self) -> dict[str, int]:
        return {name: len(self.splits[name]) for name in ("train", "val", "test")}

    def labels(self, split: str) -> np.ndarray:
        images = self.splits[split]
        return np.asarray(images.targets)[images.indices]

    duplicate_rule = "image"

    def origins(self, split: str) -> list[str]:
        """Image files by their path under data.root; the standard sets by their index in the
        official train or test set, as torchvision loads it."""
        images = self.splits[split]
        if isinstance(images.source, ImageFiles):
            paths = images.source.paths
            return [os.path.relpath(str(paths[int(i)]), self.root) for i in images.indices]
        return [str(int(i)) for i in images.indices]

    def example(self, split: str, index: int) -> torch.Tensor:
        return self.splits[split][index][0]

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        """Shuffled train batches are augmented; every other loader gives the clean images."""
        dataset = self.splits["train_augmented" if split == "train" and shuffle else split]
        return self._loader(dataset, shuffle, augmented=split == "train" and shuffle)

    def pixel_loader(self, split: str) -> DataLoader:
        """A split's images as uint8 pixels, resized but not normalized (the leakage check)."""
        return DataLoader(
            self.splits[split], batch_size=self.batch_size, num_workers=self.num_workers
        )

    def fold_loaders(self, fit: np.ndarray, held: np.ndarray) -> tuple[DataLoader, DataLoader]:
        """Two parts of the training split by position: `fit` shuffled and augmented as training
        batches are, `held` clean (cross-fitting, run/out_of_sample.py)."""
        from torch.utils.data import Subset

        fit_set = Subset(self.splits["train_augmented"], fit.tolist())
        held_set = Subset(self.splits["train"], held.tolist())
        return self._loader(fit_set, True, augmented=True), self._loader(held_set, False)

    def _loader(self, dataset: Dataset, shuffle: bool, augmented: bool = False) -> DataLoader:
        seed = int(torch.initial_seed()) % 2**31  # follows `seed=` via seed_everything
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=ShuffledPasses(len(dataset), seed, self.batch_size) if shuffle else None,
            drop_last=lone_last_batch(len(dataset), self.batch_size, shuffle),
            # the workers' base seed, drawn here and not from the training process's generator
            # (which would then differ after a resume, where validation starts its workers later)
            generator=torch.Generator().manual_seed(seed),
            collate_fn=self.finish_augmented if augmented else self.finish,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
        )


def check_links(root: str) -> None:
    """The image folder's links stay inside it and never loop. A folder is read by following its
    links (torchvision's ImageFolder walks with them), so `a/loop -> ..` would list the tree again
    and again: the same images, mislabelled, in every split. One line names the first bad link."""
    top = os.path.realpath(root)
    for folder, subfolders, files in os.walk(root, followlinks=False):
        for name in [*subfolders, *files]:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                continue
            target = os.path.realpath(path)
            inside = target == top or target.startswith(top + os.sep)
            if not inside:
                raise UserError(
                    f"data.root={root!r}: the link {path} leads to {target}, outside data.root: "
                    "copy those images into data.root, or point data.root at a folder that holds "
                    "them all"
                )
            if os.path.isdir(target) and (
                os.path.realpath(folder) == target
                or os.path.realpath(folder).startswith(target + os.sep)
            ):
                raise UserError(
                    f"data.root={root!r}: the link {path} leads back to {target}, a folder that "
                    "holds it, so the images would be listed again and again: remove the link"
                )
