"""`trainer=gpu` without a GPU: the composed config, the precision it resolves to for a given GPU,
channels-last convnets, and the image loaders' worker defaults."""

from __future__ import annotations

import pickle

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from practicum.data import images
from practicum.data.images import TorchvisionImageData
from practicum.platform import gpu
from practicum.run.build import build_datamodule, build_task, build_trainer
from test_image_data import write_image_folder

from conftest import compose_train, run_cli


def test_trainer_gpu_composes_mixed_precision_and_channels_last(tmp_path):
    cfg = compose_train(tmp_path, ["trainer=gpu"])
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.devices == 1
    assert cfg.trainer.precision == "mixed"
    assert [c["_target_"] for c in cfg.trainer.callbacks] == ["practicum.platform.gpu.ChannelsLast"]
    data = compose_train(tmp_path, ["data=image_folder", "data.root=/images"]).data
    assert data.pin_memory == "auto" and data.persistent_workers is True
    assert data.num_workers == "auto"


@pytest.mark.parametrize(
    ("cuda", "bf16", "expected"),
    [(True, True, "bf16-mixed"), (True, False, "16-mixed"), (False, False, "32-true")],
)
def test_mixed_precision_follows_what_the_gpu_supports(monkeypatch, cuda, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    assert gpu.trainer_precision("mixed") == {"precision": expected}
    # any precision the user names passes to Lightning as it is
    assert gpu.trainer_precision("32-true") == {} and gpu.trainer_precision("16-mixed") == {}


def test_build_trainer_resolves_mixed_and_adds_channels_last_on_the_cpu(tmp_path):
    cfg = compose_train(tmp_path, ["trainer=gpu", "trainer.accelerator=cpu"])
    trainer = build_trainer(cfg)
    assert trainer.precision == "32-true"  # no CUDA GPU: full precision
    assert sum(isinstance(c, gpu.ChannelsLast) for c in trainer.callbacks) == 1
    assert build_trainer(cfg, quiet=True).precision == "32-true"


def test_to_channels_last_converts_weights_and_inputs():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    seen = []
    net[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.randn(2, 3, 8, 8)
    before = net(x)
    assert gpu.to_channels_last(net) is True
    after = net(x)
    assert net[2].weight.is_contiguous(memory_format=torch.channels_last)
    assert not net[2].weight.is_contiguous()
    assert seen[0].is_contiguous()  # before: the usual NCHW layout
    assert seen[-1].is_contiguous(memory_format=torch.channels_last)
    assert not seen[-1].is_contiguous()
    torch.testing.assert_close(after, before)  # the same numbers, another memory layout
    mlp = nn.Sequential(nn.Linear(4, 2))
    assert gpu.to_channels_last(mlp) is False


def _fit_with(callback: pl.Callback, tmp_path) -> nn.Module:
    cfg = compose_train(tmp_path, ["model=cnn", "model.net.channels=[8,16]"])
    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=3,
        limit_val_batches=0,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, datamodule=datamodule)
    return task.net


def test_channels_last_callback_acts_on_the_devices_it_names(tmp_path):
    on_cpu = gpu.ChannelsLast(devices=("cpu",))
    net = _fit_with(on_cpu, tmp_path / "cpu")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert on_cpu.applied and len(convs) == 2
    # the second conv's weight (16, 8, 3, 3) has one layout per memory format
    assert convs[1].weight.is_contiguous(memory_format=torch.channels_last)
    assert not convs[1].weight.is_contiguous()
    assert all(torch.isfinite(p).all() for p in net.parameters())

    default = gpu.ChannelsLast()  # CUDA only: a CPU run keeps the usual layout
    net = _fit_with(default, tmp_path / "default")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert not default.applied and convs[1].weight.is_contiguous()


@pytest.mark.parametrize(("cpus", "workers"), [(1, 0), (2, 1), (4, 3), (16, 8), (64, 8)])
def test_auto_workers_leave_one_cpu_for_the_step(monkeypatch, cpus, workers):
    monkeypatch.setattr(images.os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert images.default_workers() == workers


def test_image_folder_auto_workers_and_a_picklable_dataset(tmp_path):
    root = write_image_folder(tmp_path / "images")
    data = TorchvisionImageData(
        dataset="image_folder", root=str(root), num_workers="auto", augment="none", batch_size=4
    )
    data.setup()
    assert data.num_workers == images.default_workers()
    # workers started by spawn or forkserver get the dataset by pickle
    split = data.splits["train"]
    copy = pickle.loads(pickle.dumps(split))
    torch.testing.assert_close(copy[0][0], split[0][0])
    assert copy[0][1] == split[0][1] and len(copy) == len(split)
    # one worker gives the batches the main process gives
    data.num_workers = 1
    with_worker = [x for x, _ in data.loader("val")]
    data.num_workers = 0
    in_process = [x for x, _ in data.loader("val")]
    assert len(with_worker) == len(in_process) > 0
    for a, b in zip(with_worker, in_process, strict=True):
        torch.testing.assert_close(a, b)


def test_bad_num_workers_is_one_line(tmp_path):
    root = write_image_folder(tmp_path / "images")
    result = run_cli(
        "train.py", "data=image_folder", f"data.root={root}", "data.num_workers=-1",
        f"paths.log_dir={tmp_path / 'logs'}",
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("practicum: error: data.num_workers=-1")
    assert "auto" in lines[-1]
    assert not (tmp_path / "logs").exists()
