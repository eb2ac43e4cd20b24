"""Every remedy the autopilot may apply works on every data family whose sizes are read from the
files: a CSV table (data=csv, model=mlp) and a folder of PNG images (data=image_folder, model=cnn),
both with `input_shape: auto` and `num_classes: auto`. Each change the diagnosis can advise
composes and validates, the range-test remedy reads the real sizes (it once saw the shape
`['a', 'u', 't', 'o']`) and the batches (a variable-length sequence batch is a tuple), and the
real autopilot runs remedy after remedy without a crash."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from practicum.autopilot.choose import KNOB_CHANGES
from practicum.autopilot.range_test import suggested_lr
from practicum.autopilot.step_overrides import merged, step_config
from practicum.config import AUTOPILOT_KNOBS
from practicum.config.knobs import run_changes
from practicum.run.build import build_datamodule, build_task

from conftest import run_cli

CLASSES = ("ant", "bee", "cow")


def write_table(path: Path, rows: int = 120, features: int = 4) -> Path:
    """A CSV table with string labels: three classes that overlap a little."""
    rng = np.random.default_rng(0)
    labels = np.arange(rows) % len(CLASSES)
    x = rng.normal(size=(rows, features)) + 1.5 * labels[:, None]
    lines = [",".join([*(f"f{i}" for i in range(features)), "label"])]
    lines += [
        ",".join([*(f"{v:.4f}" for v in row), CLASSES[y]]) for row, y in zip(x, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_images(root: Path, per_class: int = 8, size: int = 8) -> Path:
    """One folder of size x size RGB PNGs per class, the class in one bright channel."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, size=(size, size, 3), dtype=np.uint8)
            pixels[..., k] = 230
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def family_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The overrides of each family's run: its files, a fitting model, sizes left `auto`;
    one epoch, no linear baseline and no audit (the remedies are under test, not the data)."""
    folder = tmp_path_factory.mktemp("families")
    table = write_table(folder / "table.csv")
    images = write_images(folder / "images")
    cheap = [
        "trainer.max_epochs=1",
        "diagnosis.baseline_model=null",
        "diagnosis.audit=false",
        "callbacks.progress_bar=null",
    ]
    return {
        "csv": ["data=csv", f"data.path={table}", "model=mlp", "data.batch_size=16", *cheap],
        # variable lengths: a batch is ((padded, lengths), y), the range test once crashed on it
        "sequences": [
            "data=adding",
            "data.num_sequences=120",
            "data.min_length=4",
            "data.max_length=8",
            "data.batch_size=16",
            "model=lstm",
            *cheap,
        ],
        "image_folder": [
            "data=image_folder",
            f"data.root={images}",
            "model=cnn",
            "data.image_size=8",
            "data.batch_size=8",
            "data.num_workers=0",
            *cheap,
        ],
    }


FAMILIES = ["csv", "image_folder"]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_remedy_change_composes_and_builds(tmp_path: Path, family_data, family: str):
    """The config as the autopilot composes it, the data and task as the run builds them: every
    change of every remedy composes, validates and builds."""
    base = family_data[family]
    cfg = step_config(base, str(tmp_path), tmp_path / "base")
    assert cfg.data.input_shape == "auto" and cfg.data.num_classes == "auto"
    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    assert cfg.data.num_classes == 3 and cfg.model.net.num_classes == 3
    assert list(cfg.model.net.in_shape) == ([4] if family == "csv" else [3, 8, 8])
    changes = run_changes(cfg, task, datamodule)
    # each remedy the autopilot can turn on these models has changes to make
    expected = {KNOB_CHANGES[knob] for knob in AUTOPILOT_KNOBS} - {"collapse"}  # a VAE's alone
    assert expected <= {key for key, options in changes.items() if options}, changes
    tried = 0
    for key, options in changes.items():
        for change in options:
            # a key the model lacks or a value out of range raises UserError here
            changed = step_config(merged(base, change), str(tmp_path), tmp_path / "changed")
            assert changed.data.input_shape == "auto", (key, change)
            # and the run builds: the data fills in the sizes, the net takes them
            build_datamodule(changed)
            build_task(changed)
            tried += 1
    assert tried >= len(expected)


@pytest.mark.parametrize("family", [*FAMILIES, "sequences"])
def test_the_range_test_reads_the_real_sizes(tmp_path: Path, family_data, family: str):
    """The range-test remedy on a step's config, sizes still `auto`: it runs (a suggestion, or
    None with the reason), never "range test not run" for sizes it failed to read."""
    cfg = step_config(family_data[family], str(tmp_path), tmp_path / "step")
    assert cfg.data.input_shape == "auto"
    printed = io.StringIO()
    lr = suggested_lr(cfg, tmp_path, 1, Console(file=printed, width=200))
    assert lr is None or isinstance(lr, float)
    assert "range test not run" not in printed.getvalue(), printed.getvalue()
    saved = json.loads((tmp_path / "lr_range_01.json").read_text())
    assert saved["suggestion"] > 0 and (tmp_path / "lr_range_01.png").is_file()


# Each family's autopilot: where it starts, the knobs it may turn and its runs (tiny data and one
# epoch are far from the goal: the diagnosis calls for the range test first, then a change). The
# table: the range test's lr, then more capacity. The images: the range test (its suggestion is
# not sane on three val images, so no run), less dropout, then augmentation off.
AUTOPILOTS = {
    "csv": ([], ("range_test", "capacity"), 3),
    "image_folder": (["optimizer.lr=1e-5"], ("range_test", "less_regularization"), 3),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_the_autopilot_runs_the_remedies_on_auto_sizes(tmp_path: Path, family_data, family: str):
    """The real autopilot, in-process as `python train.py autopilot=default ...` runs: remedy
    after remedy as its diagnoses call for them, none of them crashing."""
    start, knobs, runs = AUTOPILOTS[family]
    logs = tmp_path / "logs"
    result = run_cli(
        "train.py",
        "autopilot=default",
        f"autopilot.knobs=[{','.join(knobs)}]",
        f"autopilot.max_runs={runs}",
        f"paths.log_dir={logs}",
        *family_data[family],
        *start,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "range test not run" not in result.stdout, result.stdout
    (state_file,) = logs.glob("*/autopilot/*/autopilot.json")
    state = json.loads(state_file.read_text())
    assert state["stop_reason"], state
    # the range-test remedy ran on the data's real sizes (its curve is in the autopilot folder)
    assert list(state_file.parent.glob("lr_range_*.json")), result.stdout
    assert len(state["trail"]) >= 3, result.stdout  # the baseline and two changes at least
    for step in state["trail"]:
        assert step["run_dirs"], step
        for run_dir in step["run_dirs"]:
            summary = json.loads((Path(run_dir) / "summary.json").read_text())
            assert summary["status"] in ("completed", "diverged"), (step["change"], summary)
