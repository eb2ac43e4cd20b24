"""A user's own configs and code, without editing the project: a config folder on
`hydra.searchpath`, and a package trusted by PRACTICUM_TRUST in the command's environment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from practicum.cli import Completed

from conftest import run_cli

QUICK = ["trainer.max_epochs=1", "callbacks.progress_bar=null", "diagnosis.baseline_model=null"]
PACKAGE = """
import math
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, in_shape, num_classes, width: int = 8):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(in_shape), width), nn.ReLU(), nn.Linear(width, num_classes)
        )

    def forward(self, x):
        return self.layers(x)


def plant(path):
    open(path, "w").write("planted")
"""


@pytest.fixture
def own_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package of the user's, `my_project`, importable as PYTHONPATH would make it."""
    (tmp_path / "code" / "my_project").mkdir(parents=True)
    (tmp_path / "code" / "my_project" / "__init__.py").write_text(PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    monkeypatch.delenv("PRACTICUM_TRUST", raising=False)
    yield tmp_path / "code"
    sys.modules.pop("my_project", None)


def _run(tmp_path: Path, *args: str, trust: str | None = None) -> Completed:
    """`python train.py` in this process, PRACTICUM_TRUST=`trust` in its environment."""
    env = {"PRACTICUM_TRUST": trust} if trust is not None else {}
    return run_cli("train.py", *args, f"paths.log_dir={tmp_path / 'logs'}", env=env)


def _errors(result: Completed) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]


def test_a_config_folder_on_the_search_path_is_an_option(tmp_path: Path):
    folder = tmp_path / "my_conf" / "model"
    folder.mkdir(parents=True)
    (folder / "narrow_mlp.yaml").write_text(
        "defaults:\n  - mlp\n  - _self_\nnet:\n  hidden_units: 16\n"
    )
    search = f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]"
    result = _run(tmp_path, search, "model=narrow_mlp", *QUICK)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert "hidden_units: 16" in (run / ".hydra" / "config.yaml").read_text()
    # a name in neither folder is one line that lists both
    result = _run(tmp_path, search, "model=nope", *QUICK)
    (line,) = _errors(result)
    assert "narrow_mlp" in line and f"{tmp_path / 'my_conf' / 'model'}/" in line


def test_own_package_is_trusted_only_through_the_environment(tmp_path: Path, own_code: Path):
    net = [
        "model=mlp",
        "model.net._target_=my_project.TinyNet",
        "~model.net.hidden_units",
        "~model.net.depth",
        "~model.net.batch_norm",
        "~model.net.dropout",
    ]
    refused = _run(tmp_path, *net, *QUICK)
    assert refused.returncode == 2 and "PRACTICUM_TRUST=<your package>" in _errors(refused)[0]

    trained = _run(tmp_path, *net, *QUICK, trust="my_project")
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"

    # trusting a package trusts its classes of the kinds configs build, never its functions
    planted = tmp_path / "planted"
    result = _run(
        tmp_path,
        "model.net._target_=my_project.plant",
        f"+model.net.path={planted}",
        trust="my_project",
    )
    assert result.returncode == 2 and not planted.exists()
    assert _run(tmp_path, trust="os").returncode == 2

    # the checkpoint of that run, evaluated without the variable, is refused: a checkpoint's
    # stored config cannot bring its own trust
    result = run_cli(
        "eval.py",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        f"paths.log_dir={tmp_path / 'eval-logs'}",
    )
    assert result.returncode == 2 and "is not a trusted target" in result.stderr
