"""The autopilot's loop on real, short runs: what it keeps and reverts, why it stops, resuming
after a kill, and bad settings refused in one line before anything runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from practicum.autopilot import run_autopilot
from practicum.run.one_run import train_run
from test_cases import noisy_blobs

from conftest import compose_train, run_cli

# digits, an MLP at a modest lr, one epoch: too few steps for val/acc >= 0.9
TOO_FEW_EPOCHS = [
    "model=mlp",
    "optimizer.lr=3e-4",
    "trainer.max_epochs=1",
    "goal.target=0.9",
    "diagnosis.baseline_model=null",
]


def autopilot(tmp_path: Path, overrides: list[str], settings: list[str] = ()) -> tuple[dict, Path]:
    """Run the autopilot in-process as `python train.py autopilot=default <overrides>` would."""
    cfg = compose_train(tmp_path, ["autopilot=default", *overrides, *settings])
    folder = tmp_path / "autopilot"
    cfg.paths.output_dir = str(folder)
    run_autopilot(cfg, train_run, given=["autopilot=default", *overrides, *settings])
    return json.loads((folder / "autopilot.json").read_text()), folder


def trail(folder: Path) -> list[dict]:
    with open(folder / "trail.csv") as handle:
        return list(csv.DictReader(handle))


def fingerprint(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_too_few_epochs_budget_stop_then_resume_keeps_training_longer_to_the_goal(
    tmp_path: Path,
):
    state, folder = autopilot(tmp_path, TOO_FEW_EPOCHS, ["autopilot.max_runs=2"])
    assert state["stop_reason"] == "max_runs" and not state["goal_met"]
    rows = trail(folder)
    assert [r["decision"] for r in rows] == ["baseline", "kept"]
    assert rows[0]["case"] == "too_few_steps"
    # the first remedy of too few steps: more epochs (and patience), as one change
    assert rows[1]["change"] == "trainer.max_epochs=6 callbacks.early_stopping.patience=10"
    assert "too few steps" in rows[1]["why"].lower()
    assert float(rows[1]["val_objective"]) > float(rows[0]["val_objective"]) + 0.1
    assert state["best_step"] == 1 and state["runs"] == 2
    before = {name: fingerprint(folder / name) for name in ("step_00", "step_01")}

    # killed or out of budget: the same folder goes on with a bigger budget, one step more
    cfg = compose_train(tmp_path, ["autopilot=default", f"autopilot.resume={folder}"])
    cfg.autopilot.max_runs = 3
    cfg.paths.output_dir = str(tmp_path / "fresh")
    run_autopilot(cfg, train_run, given=[])
    state = json.loads((folder / "autopilot.json").read_text())
    rows = trail(folder)
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    assert rows[2]["change"].startswith("trainer.max_epochs=12")
    assert state["stop_reason"] == "goal_met" and state["goal_met"] is True
    assert state["best_step"] == 2 and state["objective"]["val"] >= 0.9
    assert state["objective"]["test"] is not None  # reported on test too
    for name, files in before.items():  # finished steps are never rewritten
        assert fingerprint(folder / name) == files
    assert sorted(p.name for p in folder.glob("step_*")) == ["step_00", "step_01", "step_02"]
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert (
        "trainer.max_epochs=12" in best["overrides"]
        and "trainer.max_epochs=1" not in best["overrides"]
    )
    assert best["command"].startswith("python train.py model=mlp")
    assert (folder / "trail.png").stat().st_size > 0
    md = (folder / "trail.md").read_text()
    assert md.count("**kept**") == 2 and "(baseline)" in md


def test_a_change_within_the_noise_is_reverted_and_then_no_remedy_is_left(tmp_path: Path):
    """A linear model that has converged: training it twice as long moves val/acc by less than
    the noise, so the change is reverted; with only that knob allowed nothing is left."""
    overrides = [
        "model=linear",
        "optimizer.lr=1e-2",
        "trainer.max_epochs=30",
        "goal.target=0.99",
        "diagnosis.baseline_model=null",
    ]
    state, folder = autopilot(tmp_path, overrides, ["autopilot.knobs=[train_longer]"])
    rows = trail(folder)
    assert [r["decision"] for r in rows] == ["baseline", "reverted"]
    # judged on the same val examples: the paired difference and its standard error
    assert rows[1]["reason"].startswith("paired ") and "not beyond the noise" in rows[1]["reason"]
    gain, se = float(rows[1]["gain"]), float(rows[1]["gain_se"])
    assert gain <= se and se < float(rows[0]["val_se"])
    assert state["stop_reason"] == "no_remedy" and state["best_step"] == 0
    assert "trainer.max_epochs=30" in state["best_overrides"]  # the reverted change is not in it


def test_noisy_labels_stop_at_once_with_the_lectures_remedy(tmp_path: Path):
    data = noisy_blobs(tmp_path / "blobs.npz")
    overrides = [
        "data=npz",
        f"data.path={data}",
        "model=mlp",
        "trainer.max_epochs=15",
        "goal.target=0.9",
    ]
    state, folder = autopilot(tmp_path, overrides)
    assert state["stop_reason"] == "unfixable" and state["steps"] == 1
    assert state["stop_message"].startswith("noise_floor:") and "labels" in state["stop_message"]
    assert trail(folder)[0]["case"] == "noise_floor"
    assert not state["goal_met"]


def test_bad_settings_are_one_line_before_anything_runs(tmp_path: Path):
    logs = tmp_path / "logs"
    cases = {
        ("autopilot.max_runs=0",): "autopilot.max_runs=0 is invalid",
        ("autopilot.knobs=[capacty]",): "unknown knob 'capacty': did you mean capacity?",
        ("autopilot.knobs=[capacity]", "model=linear"): "model=linear has none of the knobs",
        (f"autopilot.resume={tmp_path / 'nowhere'}",): "no autopilot.json there",
    }
    for args, message in cases.items():
        result = run_cli("train.py", "autopilot=default", f"paths.log_dir={logs}", *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and lines[0].startswith("practicum: error: ") and message in lines[0]
    assert not list(logs.glob("*/autopilot/*")), "a refused autopilot left a folder"


def test_a_one_epoch_start_trains_longer_and_wastes_no_run(tmp_path: Path):
    """breast_cancer for one epoch: the gap of a short run on 114 val rows is not overfitting,
    so no regularizer, earlier stop or smaller net is tried; every decision is paired on the same
    val examples; no two steps train the same config; every advised command in a step's report
    repeats that step's overrides."""
    overrides = [
        "data=breast_cancer",
        "model=mlp",
        "trainer.max_epochs=1",
        "goal.target=0.995",
        "diagnosis.baseline_model=null",
        "diagnosis.audit=false",
    ]
    state, folder = autopilot(tmp_path, overrides, ["autopilot.max_runs=4"])
    rows = trail(folder)
    assert rows[0]["case"] == "too_few_steps" and rows[1]["remedy"] == "train_longer"
    assert not {"regularize", "early_stopping", "smaller"} & {r["remedy"] for r in rows}
    for row in rows[1:]:
        assert row["paired"] == "yes" and row["reason"].startswith("paired "), row
    ran = [tuple(sorted(step["overrides"])) for step in state["trail"]]
    assert len(ran) == len(set(ran))
    for step in state["trail"]:
        run_dir = Path(step["run_dirs"][0])
        assert (run_dir / "val_outcomes.npz").is_file()
        report = (run_dir / "report.md").read_text()
        for line in report.splitlines():
            if "`python train.py" in line:
                assert "data=breast_cancer model=mlp" in line, line
    assert state["stop_case"] is None or state["stop_reason"] == "unfixable"


@pytest.mark.slow
def test_parallel_candidates_run_at_once_and_one_is_kept(tmp_path: Path):
    """`autopilot.parallel=2`: after the baseline, the top two changes of an lr too low run at
    once, each in a process of its own; the one that gained more is kept, the other reverted."""
    overrides = [
        "model=mlp",
        "optimizer.lr=1e-6",
        "trainer.max_epochs=3",
        "goal.target=0.999",
        "diagnosis.baseline_model=null",
    ]
    state, folder = autopilot(tmp_path, overrides, ["autopilot.parallel=2", "autopilot.max_runs=3"])
    rows = trail(folder)
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    assert state["rounds"] and state["rounds"][0]["steps"] == [1, 2]
    decisions = sorted(r["decision"] for r in rows[1:])
    assert decisions == ["kept", "reverted"], rows
    kept = next(r for r in rows[1:] if r["decision"] == "kept")
    other = next(r for r in rows[1:] if r["decision"] == "reverted")
    assert float(kept["gain"]) >= float(other["gain"])
    for row in rows:
        summary = json.loads((folder / row["run_dir"] / "summary.json").read_text())
        assert summary["status"] == "completed"
