"""The benchmark suite runs and writes its results; the benchmarks themselves hold the speed targets."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from conftest import ROOT

# the benchmarks' own smoke runs: minutes of timing loops, in the slow layer
pytestmark = pytest.mark.slow


def run_bench(results_dir, *args: str) -> subprocess.CompletedProcess:
    """`benchmarks/run.py <args>` writing into `results_dir`; it must succeed."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            *args,
            "--results-dir",
            str(results_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_quick_throughput_section_writes_numbers(tmp_path):
    result = run_bench(tmp_path, "--quick", "--only", "throughput")
    assert "samples/s" in result.stdout

    latest = json.loads((tmp_path / "latest.json").read_text())
    stamped = [p for p in tmp_path.glob("*.json") if p.name != "latest.json"]
    assert len(stamped) == 1 and json.loads(stamped[0].read_text()) == latest
    assert latest["machine"]["cpus"] >= 1
    section = latest["sections"]["throughput"]
    assert set(section["models"]) == {"linear", "mlp", "cnn", "resnet", "vgg", "inception"}
    assert section["models"]["resnet"]["input"] == "synthetic 3x32x32"
    for numbers in section["models"].values():
        for key in ("task_samples_per_s", "net_samples_per_s", "task_ms_per_step"):
            assert math.isfinite(numbers[key]) and numbers[key] > 0
        assert numbers["params"] > 0
    assert len(section["load_before"]) == 3


def test_fit_section_times_three_sides_on_the_same_steps(tmp_path):
    result = run_bench(tmp_path, "--only", "fit", "--repeats", "1", "--threads", "1")
    assert "practicum / bare Lightning" in result.stdout and "+ checkpoint" in result.stdout

    section = json.loads((tmp_path / "latest.json").read_text())["sections"]["fit"]
    assert set(section["sides"]) == {"practicum", "lightning", "by_hand"}
    # every side ran 20 epochs of the default training batches
    from practicum.run.build import build_datamodule

    from conftest import compose_train

    datamodule = build_datamodule(compose_train(tmp_path))
    assert section["steps"] == 20 * len(datamodule.train_dataloader())
    for side in section["sides"].values():
        assert side["epochs_run"] == [20]
        assert side["val_acc"] > 0.95
        assert math.isfinite(side["ratio"]) and side["ratio"] > 0
    assert section["sides"]["by_hand"]["ratio"] == 1.0
    assert section["accuracy_comparable"] is True
    # the headline: practicum over bare Lightning, paired within each round
    practicum = section["sides"]["practicum"]["fit_s"]["runs"][0]
    lightning = section["sides"]["lightning"]["fit_s"]["runs"][0]
    assert math.isclose(section["ratio"], practicum / lightning, rel_tol=1e-3)
    ratio = section["ratios"]["practicum_vs_lightning"]
    assert ratio["min"] <= ratio["median"] <= ratio["max"]
    # each feature alone on the bare fit, and all of them, as a ratio to it; all train alike
    costs = section["features"]["costs"]
    assert {"checkpoint", "atomic_io", "metrics", "csv_logger", "step_losses", "all"} <= set(costs)
    for cost in costs.values():
        assert math.isfinite(cost["ratio"]["median"]) and cost["ratio"]["median"] > 0
        assert cost["val_acc"] > 0.95


def test_steps_section_times_resnet_steps_against_a_hand_loop(tmp_path):
    result = run_bench(tmp_path, "--quick", "--only", "steps", "--threads", "1")
    assert "ResNet-18" in result.stdout and "practicum / hand loop" in result.stdout

    section = json.loads((tmp_path / "latest.json").read_text())["sections"]["steps"]
    assert section["batch_size"] == 64 and section["input"] == "synthetic 3x32x32"
    assert set(section["sides"]) == {
        "practicum",
        "by_hand",
        "practicum_no_step_checkpoint",
        "practicum_saving",
    }
    for side in section["sides"].values():
        assert side["window_s"]["median"] > 0 and math.isfinite(side["loss"])
    ratio = section["ratio"]
    assert 0 < ratio["min"] <= ratio["median"] <= ratio["max"]
    assert section["meets_target"] == (ratio["median"] <= section["target_ratio"] == 1.03)
    armed = section["armed_ratio"]
    assert section["meets_armed"] == (armed["median"] <= section["target_armed"] == 1.01)
    assert "practicum / without mid-epoch checkpoints" in result.stdout


def test_classes_section_times_evaluation_up_to_ten_thousand_classes(tmp_path):
    result = run_bench(tmp_path, "--quick", "--only", "classes", "--threads", "1")
    assert "10,000" in result.stdout
    section = json.loads((tmp_path / "latest.json").read_text())["sections"]["classes"]
    cells = section["cells"]
    assert {cell["classes"] for cell in cells} == {10, 1_000, 10_000} and len(cells) == 6
    for cell in cells:
        assert cell["f1_s"] > 0 and cell["errors_s"] > 0 and 0.5 < cell["macro_f1"] < 0.9
    assert section["meets_target"] == (
        section["ratio_classes"] <= 2 and section["ratio_examples"] <= 2.5
    )


def test_gpu_section_runs_its_cpu_path_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("with a GPU the section measures it: minutes, not a test")
    result = run_bench(tmp_path, "--only", "gpu", "--threads", "1")
    assert "ResNet-18" in result.stdout and "practicum / hand loop" in result.stdout

    section = json.loads((tmp_path / "latest.json").read_text())["sections"]["gpu"]
    assert section["device_type"] == "cpu" and section["precision"] == "32-true"
    assert section["channels_last"] is False and section["meets_target"] is None
    assert section["rounds"] == 2 and section["timed_steps"] == 3
    for side in ("practicum_images_per_s", "hand_loop_images_per_s"):
        assert len(section[side]["runs"]) == 2
        assert all(math.isfinite(r) and r > 0 for r in section[side]["runs"])
    assert math.isfinite(section["ratio"]["median"]) and section["ratio"]["median"] > 0


def test_saves_section_times_three_ways_to_save_on_two_checkpoints(tmp_path):
    result = run_bench(tmp_path, "--quick", "--only", "saves", "--threads", "1")
    assert "BackgroundCheckpointIO" in result.stdout

    section = json.loads((tmp_path / "latest.json").read_text())["sections"]["saves"]
    assert section["saves"] == 5
    assert set(section["checkpoints"]) == {"digits_cnn", "resnet18_adam"}
    for checkpoint in section["checkpoints"].values():
        assert checkpoint["mb"] > 0
        assert set(checkpoint["ms"]) == {"stock", "atomic", "background"}
        for ms in checkpoint["ms"].values():
            assert len(ms["runs"]) == 5 and 0 < ms["min"] <= ms["median"] <= ms["max"]
        on_disk = checkpoint["background_to_disk_ms"]["median"]
        assert on_disk >= checkpoint["ms"]["background"]["median"]
        stock, background = checkpoint["ms"]["stock"], checkpoint["ms"]["background"]
        assert checkpoint["meets_target"] == (background["median"] <= stock["median"])
