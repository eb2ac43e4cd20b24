"""VAE and GAN on the 8x8 digits: real training, logged quantities, sample grids, diagnosis."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import run_cli, train

SHORT = ["trainer.max_epochs=3"]


def _history(run_dir: Path, key: str) -> list[float]:
    with (run_dir / "metrics.csv").open() as handle:
        return [float(row[key]) for row in csv.DictReader(handle) if row.get(key)]


def _grids(run_dir: Path, folder: str) -> list[Path]:
    paths = sorted((run_dir / "grids" / folder).glob("epoch_*.png"))
    for path in paths:
        with Image.open(path) as image:
            assert min(image.size) >= 64  # a grid of enlarged 8x8 images, not one tiny picture
    return paths


def test_vae_logs_the_elbo_split_and_writes_grids(tmp_path: Path):
    value, summary, run_dir = train(tmp_path, ["model=vae", *SHORT])
    metrics = summary["metrics"]
    assert summary["goal"]["metric"] == "val/nelbo" and summary["goal"]["mode"] == "min"
    assert value == pytest.approx(metrics["val/nelbo"])
    for split in ("train", "val", "test"):
        recon, kl = metrics[f"{split}/recon"], metrics[f"{split}/kl"]
        assert recon > 0 and kl > 0
        assert metrics[f"{split}/nelbo"] == pytest.approx(recon + kl, rel=1e-4)
        assert metrics[f"{split}/loss"] == pytest.approx(recon + kl, rel=1e-4)  # beta = 1
    nelbo = _history(run_dir, "val/nelbo")
    assert len(nelbo) == 3 and nelbo[-1] < nelbo[0] and nelbo[-1] < 60  # 64 pixels, in nats
    assert 0 <= metrics["val/precision"] <= 1 and 0 <= metrics["val/recall"] <= 1
    assert [p.name for p in _grids(run_dir, "samples")] == [f"epoch_00{i}.png" for i in range(3)]
    assert len(_grids(run_dir, "reconstructions")) == 3
    assert (run_dir / "samples.png").is_file() and (run_dir / "reconstructions.png").is_file()
    report = (run_dir / "report.md").read_text()
    assert "Validation ELBO split" in report and summary["verdict"] != "diverged"


def test_vae_beta_weighs_the_kl_term(tmp_path: Path):
    _, summary, _ = train(tmp_path, ["model=vae", "model.beta=4.0", "trainer.max_epochs=1"])
    m = summary["metrics"]
    assert m["val/loss"] == pytest.approx(m["val/recon"] + 4.0 * m["val/kl"], rel=1e-4)
    assert m["val/nelbo"] == pytest.approx(m["val/recon"] + m["val/kl"], rel=1e-4)


@pytest.mark.slow
def test_gan_trains_two_optimizers_and_reports_its_signals(tmp_path: Path):
    value, summary, run_dir = train(
        tmp_path, ["model=gan", "trainer.max_epochs=10", "scheduler=none"]
    )
    metrics = summary["metrics"]
    assert summary["goal"]["metric"] == "val/quality" and value == metrics["val/quality"]
    for split in ("train", "val", "test"):
        for name in ("d_loss", "g_loss", "d_real", "d_fake", "precision", "recall", "quality"):
            assert math.isfinite(metrics[f"{split}/{name}"])
        assert 0 <= metrics[f"{split}/quality"] <= 1
    # both players learned: the discriminator separates real from generated images better than
    # chance, and within ten epochs the samples start to land among real digits
    assert metrics["val/d_real"] > metrics["val/d_fake"]
    quality = _history(run_dir, "val/quality")
    assert quality[0] < 0.05 and max(quality) > 0.1
    with (run_dir / "metrics.csv").open() as handle:
        header = next(csv.reader(handle))
    assert sum(key.startswith("lr-") for key in header) == 2  # generator and discriminator
    assert len(_grids(run_dir, "samples")) == 10 and (run_dir / "samples.png").is_file()
    report = (run_dir / "report.md").read_text()
    assert "Signals watched" in report and "Not applicable to a GAN" in report
    assert summary["verdict"] in ("goal_met", "high_train_error", "high_val_error")


def test_knn_precision_recall_separates_real_blurry_and_noise():
    from practicum.tasks.generative import knn_precision_recall

    torch.manual_seed(0)
    real = torch.rand(200, 1, 8, 8).round()
    assert knn_precision_recall(real, real.clone()) == (1.0, 1.0)
    blurry = real.mean(0, keepdim=True).repeat(200, 1, 1, 1) + 0.01 * torch.randn(200, 1, 8, 8)
    assert knn_precision_recall(real, blurry)[1] < 0.05  # one blurry image covers no variety
    far = real + 10.0
    assert knn_precision_recall(real, far) == (0.0, 0.0)


def test_generative_models_need_images():
    wrong = run_cli("train.py", "model=vae", "data=wine")
    assert wrong.returncode == 2
    assert "model=vae generates images but data=wine" in wrong.stderr
