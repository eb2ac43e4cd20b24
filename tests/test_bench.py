"""The benchmark suite runs and writes its results; the benchmarks themselves hold the speed targets."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from conftest import ROOT


def test_quick_throughput_section_writes_numbers(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--only",
            "throughput",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
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
