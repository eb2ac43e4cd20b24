"""Image data from real-format files the tests write themselves: MNIST idx, CIFAR pickles, PNG folders."""

from __future__ import annotations

import math
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from practicum.data.images import TorchvisionImageData
from practicum.errors import UserError

from conftest import run_cli, train


def _patterned(
    n: int, shape: tuple[int, ...], classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images whose class shows as a bright band, on noise; labels cycle through the classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 100, size=(n, *shape), dtype=np.uint8)
    rows = shape[-2] if len(shape) == 2 else shape[0]
    band = max(1, rows // classes)
    for image, label in zip(images, labels, strict=True):
        if len(shape) == 2:
            image[label * band : (label + 1) * band] = 255
        else:
            image[label * band : (label + 1) * band, :, :] = 255  # HWC
    return images, labels


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 60, n_test: int = 20) -> Path:
    """The four uncompressed idx files torchvision's MNIST reads from `<root>/MNIST/raw/`."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = _patterned(n, (28, 28), 10, seed)
        header = struct.pack(">iiii", 0x0803, n, 28, 28)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        header = struct.pack(">ii", 0x0801, n)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            header + labels.astype(np.uint8).tobytes()
        )
    return root


def write_cifar10(root: Path, per_batch: int = 12, n_test: int = 20) -> Path:
    """`cifar-10-batches-py/`: five training pickles, `test_batch` and `batches.meta`."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(name: str, n: int, seed: int) -> None:
        images, labels = _patterned(n, (32, 32, 3), 10, seed)
        rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # CIFAR stores planes: R, G, B
        entry = {"batch_label": name, "data": rows, "labels": labels.tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))

    for i in range(1, 6):
        batch(f"data_batch_{i}", per_batch, i)
    batch("test_batch", n_test, 0)
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return root


def write_cifar100(root: Path, n_train: int = 200, n_test: int = 100) -> Path:
    """`cifar-100-python/`: the `train` and `test` pickles (fine and coarse labels) and `meta`."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        images, labels = _patterned(n, (32, 32, 3), 100, seed)
        rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)
        entry = {
            "data": rows,
            "fine_labels": labels.tolist(),
            "coarse_labels": (labels // 5).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(entry))
    meta = {"fine_label_names": [f"class_{i}" for i in range(100)], "coarse_label_names": []}
    (folder / "meta").write_bytes(pickle.dumps(meta))
    return root


def write_fixture(dataset: str, root: Path) -> Path:
    """The small real-format files for any image dataset config (e.g. for `data=<dataset>` tests)."""
    if dataset == "fashion_mnist":
        return write_mnist(root, "FashionMNIST")
    writers = {"mnist": write_mnist, "cifar10": write_cifar10, "cifar100": write_cifar100}
    return writers.get(dataset, write_image_folder)(root)


def write_image_folder(root: Path, classes=("cat", "dog", "owl"), per_class: int = 10) -> Path:
    """One folder of PNGs per class, in varying sizes as real collections have."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (20 + 2 * i, 16 + i)
            pixels = rng.integers(0, 120, size=(size[1], size[0], 3), dtype=np.uint8)
            pixels[..., k] = 230
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _check_batch(data: TorchvisionImageData, batch_size: int) -> None:
    x, y = next(iter(data.loader("val")))
    assert x.dtype == torch.float32 and tuple(x.shape[1:]) == tuple(data.input_shape)
    assert len(x) == min(batch_size, data.split_sizes()["val"]) and y.dtype == torch.long
    assert torch.isfinite(x).all() and x.min() < 0 < x.max()  # normalized around zero
    assert int(y.min()) >= 0 and int(y.max()) < data.num_classes


def test_mnist_idx_files(tmp_path):
    root = write_mnist(tmp_path)
    data = TorchvisionImageData(
        "mnist", str(root), batch_size=8, val_fraction=0.2, input_shape=[1, 28, 28]
    )
    data.setup()
    assert data.num_classes == 10 and data.input_shape == [1, 28, 28]
    assert data.class_names[0].startswith("0")
    assert data.split_sizes() == {"train": 48, "val": 12, "test": 20}
    val_labels = data.splits["val"].targets[data.splits["val"].indices]
    assert len(set(val_labels.tolist())) == 10  # stratified: every class in val
    _check_batch(data, 8)
    assert len(data.train_dataloader()) == 6


def test_train_subset_keeps_val_and_test_whole(tmp_path):
    root = write_mnist(tmp_path)
    full = TorchvisionImageData("mnist", str(root), val_fraction=0.2)
    small = TorchvisionImageData("mnist", str(root), val_fraction=0.2, train_subset=20)
    full.setup(), small.setup()
    assert small.split_sizes() == {"train": 20, "val": 12, "test": 20}
    kept, train = small.splits["train"].indices, full.splits["train"].indices
    assert set(kept.tolist()) < set(train.tolist())  # a subset of the same training split
    assert np.array_equal(small.splits["val"].indices, full.splits["val"].indices)
    assert len(set(small.splits["train"].targets[kept].tolist())) == 10  # stratified


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    data = TorchvisionImageData("fashion_mnist", str(write_mnist(tmp_path, "FashionMNIST")))
    data.setup()
    assert data.num_classes == 10 and data.class_names[0] == "T-shirt/top"


def test_cifar10_pickle_batches(tmp_path):
    data = TorchvisionImageData(
        "cifar10", str(write_cifar10(tmp_path)), batch_size=4, val_fraction=0.1
    )
    data.setup()
    assert data.input_shape == [3, 32, 32] and data.class_names[-1] == "truck"
    sizes = data.split_sizes()
    assert sizes["train"] + sizes["val"] == 60 and sizes["test"] == 20 and sizes["val"] == 6
    _check_batch(data, 4)


def test_cifar100_pickles(tmp_path):
    data = TorchvisionImageData("cifar100", str(write_fixture("cifar100", tmp_path)))
    data.setup()
    assert data.num_classes == 100 and data.input_shape == [3, 32, 32]
    assert data.split_sizes() == {"train": 180, "val": 20, "test": 100}


def test_image_folder_splits_and_sizes(tmp_path):
    root = write_image_folder(tmp_path / "images")
    data = TorchvisionImageData("image_folder", str(root), image_size=24, batch_size=5)
    data.setup()
    assert data.class_names == ["cat", "dog", "owl"] and data.input_shape == [3, 24, 24]
    assert sum(data.split_sizes().values()) == 30 and min(data.split_sizes().values()) >= 3
    _check_batch(data, 5)
    # with train/ and test/ subfolders, the test set is the test folder
    write_image_folder(tmp_path / "split" / "train", per_class=6)
    write_image_folder(tmp_path / "split" / "test", per_class=2)
    data = TorchvisionImageData("image_folder", str(tmp_path / "split"), image_size=16, channels=1)
    data.setup()
    assert data.split_sizes()["test"] == 6 and data.input_shape == [1, 16, 16]


def test_image_folder_batches_equal_torchvisions_per_image_transforms(tmp_path):
    """The loaders scale and normalize whole batches: the numbers ImageFolder's per-image
    pipeline gives, for images of the target size (passed as they are) and of other sizes."""
    from PIL import Image
    from torchvision import datasets
    from torchvision.transforms import v2

    root = write_image_folder(tmp_path / "images")
    rng = np.random.default_rng(1)
    for name in ("cat", "dog", "owl"):  # square images too: those of the target size pass as is
        for side in (16, 24, 24):
            pixels = rng.integers(0, 255, size=(side, side, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"square{side}_{rng.integers(1e6)}.png")
    for size in (24, 16):
        data = TorchvisionImageData("image_folder", str(root), image_size=size, batch_size=64)
        data.setup()
        mean, std = data.finish.stats
        transform = v2.Compose(
            [
                v2.ToImage(),
                v2.Resize(size),
                v2.CenterCrop(size),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean, std),
            ]
        )
        folder = datasets.ImageFolder(str(root), transform=transform)
        x, y = next(iter(data.loader("train")))  # every training image, unshuffled and clean
        indices = data.splits["train"].indices
        assert len(indices) == len(y) > 20
        expected = torch.stack([folder[int(i)][0] for i in indices])
        assert type(x) is torch.Tensor and x.dtype == torch.float32
        torch.testing.assert_close(x, expected, rtol=0, atol=0)
        assert y.tolist() == [folder.targets[int(i)] for i in indices]


def test_declared_shapes_that_contradict_the_files(tmp_path):
    root = str(write_mnist(tmp_path))
    with pytest.raises(UserError, match=r"data.num_classes=100 .* set data.num_classes=10"):
        TorchvisionImageData("mnist", root, num_classes=100).setup()
    with pytest.raises(UserError, match=r"set data.input_shape=\[1, 28, 28\]"):
        TorchvisionImageData("mnist", root, input_shape=[3, 32, 32]).setup()


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_augmentation_only_in_training(tmp_path, dataset):
    root = write_mnist(tmp_path) if dataset == "mnist" else write_cifar10(tmp_path)
    for augment in ("standard", "strong"):
        data = TorchvisionImageData(dataset, str(root), augment=augment)
        data.setup()
        torch.manual_seed(0)
        train = data.splits["train_augmented"]
        views = [train[0][0] for _ in range(4)]
        assert any(not torch.equal(views[0], v) for v in views[1:]), augment
        clean = data.splits["train"]
        assert torch.equal(clean[0][0], clean[0][0])
        assert torch.equal(data.splits["val"][0][0], data.splits["val"][0][0])
    data = TorchvisionImageData(dataset, str(root), augment="none")
    data.setup()
    assert torch.equal(data.splits["train_augmented"][0][0], data.splits["train"][0][0])


def test_missing_files_name_the_expected_layout(tmp_path):
    with pytest.raises(UserError, match="cifar-10-batches-py/data_batch_1"):
        TorchvisionImageData("cifar10", str(tmp_path)).setup()
    with pytest.raises(UserError, match="one subfolder of images per class"):
        TorchvisionImageData("image_folder", str(tmp_path)).setup()


def test_offline_error_from_the_cli(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(
        "train.py", "data=mnist", f"data.root={empty}", "model=cnn", f"paths.root_dir={tmp_path}"
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(lines) == 1
    assert "MNIST/raw/train-images-idx3-ubyte" in lines[0] and "data.download=true" in lines[0]


def test_mnist_trains_end_to_end(tmp_path):
    root = write_mnist(tmp_path / "data")
    _, summary, run_dir = train(
        tmp_path,
        [
            "data=mnist",
            f"data.root={root}",
            "model=cnn",
            "debug=fast",
            "diagnosis.baseline_model=null",
        ],
    )
    numbers = [v for v in _flatten(summary) if isinstance(v, float)]
    assert numbers and all(math.isfinite(v) for v in numbers)
    assert (run_dir / "summary.json").is_file()


@pytest.mark.slow
def test_cifar10_trains_a_resnet(tmp_path):
    root = write_cifar10(tmp_path / "data")
    _, summary, _ = train(
        tmp_path,
        [
            "data=cifar10",
            f"data.root={root}",
            "model=resnet",
            "model.net.depth=18",
            "debug=fast",
            "diagnosis.baseline_model=null",
        ],
    )
    numbers = [v for v in _flatten(summary) if isinstance(v, float)]
    assert numbers and all(math.isfinite(v) for v in numbers)


def _flatten(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _flatten(value)
    elif isinstance(node, list):
        for value in node:
            yield from _flatten(value)
    else:
        yield node


class _Unreadable(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int):
        raise UserError(f"{index}.png is not a readable image: replace or remove the file")


def test_a_mistake_found_in_a_loader_worker_keeps_its_one_line():
    """torch re-raises a worker's exception with the worker's traceback as its message."""
    loader = torch.utils.data.DataLoader(_Unreadable(), num_workers=1)
    with pytest.raises(UserError) as caught:
        next(iter(loader))
    assert str(caught.value) == "0.png is not a readable image: replace or remove the file"


@pytest.mark.parametrize("where", ["header", "pixels"])
def test_a_corrupt_image_file_is_one_clear_line(tmp_path, where):
    """Cut in its header, the file fails the scan of the folder; cut in its pixels, it passes the
    scan and fails when a loader worker decodes it, in another process."""
    from conftest import run_cli

    root = write_image_folder(tmp_path / "images")
    broken = root / "dog" / "3.png"
    data = broken.read_bytes()
    broken.write_bytes(data[:40] if where == "header" else data[: len(data) // 2])
    result = run_cli(
        "train.py",
        "data=image_folder",
        f"data.root={root}",
        "data.image_size=16",
        "data.num_workers=1",
        "trainer.max_epochs=1",
        f"paths.log_dir={tmp_path}/logs",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert errors[0].startswith(f"practicum: error: {broken} is not a readable image"), errors[0]
    assert "Traceback" not in result.stderr


def test_links_that_loop_or_leave_the_image_folder_are_one_line(tmp_path: Path):
    """`cat/loop -> ..` would list the folder again and again (the same images in every split,
    mislabelled); a link out of data.root reads images the folder does not hold."""
    from test_remedies_auto_shapes import write_images

    from conftest import run_cli

    outside = write_images(tmp_path / "elsewhere", per_class=2)
    for name, link, expected in (
        ("loop", "..", "leads back to"),
        ("away", str(outside), "outside data.root"),
    ):
        root = write_images(tmp_path / name, per_class=8)
        (root / "ant" / name).symlink_to(link)
        result = run_cli(
            "train.py",
            "data=image_folder",
            f"data.root={root}",
            "model=cnn",
            f"paths.log_dir={tmp_path}/logs",
        )
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("practicum:")]
        assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
        assert f"ant/{name}" in errors[0] and "Traceback" not in result.stderr


def test_an_image_too_large_to_decode_safely_is_one_line(tmp_path: Path, monkeypatch):
    """A decompression bomb (more pixels than PIL's limit, here lowered to stand for one)."""
    from PIL import Image

    from test_remedies_auto_shapes import write_images

    from conftest import run_cli

    root = write_images(tmp_path / "images", per_class=8, size=8)
    Image.new("RGB", (64, 64)).save(root / "ant" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    result = run_cli(
        "train.py",
        "data=image_folder",
        f"data.root={root}",
        "model=cnn",
        f"paths.log_dir={tmp_path}/l",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("practicum:")]
    assert len(errors) == 1 and "huge.png is too large to decode safely" in errors[0]
    assert "Traceback" not in result.stderr
