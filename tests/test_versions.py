"""The lower bounds in pyproject.toml are the versions `make test-oldest` installs (.ci/oldest.txt)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.version import Version

from conftest import ROOT

tomllib = pytest.importorskip("tomllib")

TESTED_AT_LOWER_BOUND = (
    "lightning",
    "hydra-core",
    "hydra-optuna-sweeper",
    "torchmetrics",
    "optuna",
)


def lower_bounds() -> dict[str, tuple[str, list[str]]]:
    """{name: (lower bound, excluded versions)} of pyproject.toml's dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = {}
    for requirement in project["dependencies"]:
        name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement).groups()
        clauses = [clause.strip() for clause in spec.split(",") if clause.strip()]
        lowest = [c[2:] for c in clauses if c.startswith(">=")]
        excluded = [c[2:] for c in clauses if c.startswith("!=")]
        bounds[name.lower()] = (lowest[0] if lowest else "", excluded)
    return bounds


def pins(path: Path = ROOT / ".ci" / "oldest.txt") -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            found[name.strip().lower()] = version.strip()
    return found


def test_the_oldest_pins_are_the_lower_bounds_of_pyproject():
    bounds, pinned = lower_bounds(), pins()
    for name in TESTED_AT_LOWER_BOUND:
        lowest, excluded = bounds[name]
        assert lowest, f"{name} has no lower bound in pyproject.toml"
        assert Version(pinned.get(name, "0")) == Version(lowest), (
            f".ci/oldest.txt pins {name}=={pinned.get(name)}, pyproject.toml says >={lowest}"
        )
        assert lowest not in excluded
    # the `lightning` package and the `pytorch_lightning` it ships with move together
    assert pinned["pytorch-lightning"] == pinned["lightning"]
    assert {"2.6.2", "2.6.3"} <= set(bounds["lightning"][1])
