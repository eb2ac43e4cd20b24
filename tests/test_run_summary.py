"""RunSummary, the one writer and reader of summary.json, and reading the command line's overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from practicum.config.command_line import choices, override_args, text_values, values
from practicum.errors import UserError
from practicum.methodology.run_summary import SCHEMA_VERSION, RunSummary

from conftest import run_cli

GOAL = {"metric": "val/acc", "mode": "max", "target": 0.98}


def test_a_summary_round_trips_with_its_schema_version(tmp_path: Path) -> None:
    written = RunSummary(
        status="completed",
        run_dir=str(tmp_path),
        goal=GOAL,
        objective=0.97,
        metrics={"train/acc": 1.0, "val/acc": 0.97},
        best_epoch=4,
    )
    path = written.write()
    content = json.loads(path.read_text())
    assert content["schema"] == SCHEMA_VERSION and content["status"] == "completed"
    assert RunSummary.read(tmp_path) == written
    assert not list(tmp_path.glob("*.tmp")), "the temporary file is moved into place"


def test_a_summary_written_before_the_schema_had_a_version_still_reads(tmp_path: Path) -> None:
    old = {"status": "diverged", "goal": GOAL, "metrics": {"val/acc": 0.1}, "verdict": "diverged"}
    (tmp_path / "summary.json").write_text(json.dumps(old | {"some_old_key": 1}))
    summary = RunSummary.read(tmp_path)
    assert summary.schema == 0 and summary.status == "diverged" and summary.finished
    assert summary.run_dir == str(tmp_path) and summary.objective is None


def test_no_summary_and_unknown_status(tmp_path: Path) -> None:
    assert RunSummary.read(tmp_path) is None
    with pytest.raises(ValueError, match="not one of"):
        RunSummary(status="done", run_dir=str(tmp_path), goal=GOAL)
    refused = RunSummary.unfinished("refused", tmp_path, GOAL, "optimizer.lr=-1 is invalid")
    refused.write()
    assert not RunSummary.read(tmp_path).finished


def test_overrides_are_read_with_hydras_grammar() -> None:
    argv = ["-m", "--cfg", "job", "optimizer.lr=1e-3", "model=mlp,cnn", "~logger", "+x.y=a b"]
    assert override_args(argv) == argv[3:]
    assert values(argv) == {"optimizer.lr": 0.001, "x.y": "a b"}
    assert choices(argv) == {"optimizer.lr": ["0.001"], "model": ["mlp", "cnn"], "x.y": ["a b"]}
    assert text_values(["optimizer.lr=0.003", "seed=1"]) == {"optimizer.lr": "0.003", "seed": "1"}
    with pytest.raises(UserError, match="cannot read the override 'a=b=c'"):
        values(["seed=1", "a=b=c"])


def test_a_malformed_override_is_one_line_before_anything_runs(tmp_path: Path) -> None:
    result = run_cli("train.py", "optimizer.lr=(1e-3", f"paths.log_dir={tmp_path}/logs")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if line.startswith("practicum: error:")
    ]
    assert "cannot read the override 'optimizer.lr=(1e-3'" in result.stderr
    assert result.stdout == "" and not (tmp_path / "logs" / "train").exists()
