"""Typed schemas of the config groups practicum owns, and the names of a run's parts.

Each group's YAML lists its schema first in `defaults` (`- /schema/goal@_here_`), so Hydra checks
types and missing values while composing: `goal.target=abc` fails before anything runs. The schemas
hold no ranges (validate.py does) and import nothing heavy: `--help` and `--cfg job` use them.
Groups that build objects (model, data, optimizer, ...) have no schema here: their constructors'
signatures are their schema (validate.check_arguments).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

from practicum.constraints import PositiveInt, UpToOne, one_of, rule

# the groups whose files pick a schema from conf/; `schema/<name>` in Hydra's ConfigStore
SCHEMA_GROUP = "schema"


@dataclass
class GoalConfig:
    """conf/goal/: the error metric, its direction and the value that counts as good enough."""

    metric: str = MISSING
    mode: str = field(default=MISSING, metadata=rule(one_of("max", "min")))
    target: float = MISSING
    stop_when_met: bool = False


@dataclass
class DiagnosisConfig:
    """`diagnosis:` in conf/train.yaml: the simple model the report compares the run with."""

    baseline_model: str | None = "linear"
    baseline_epochs: int = field(default=20, metadata=rule(PositiveInt))


@dataclass
class ChecksConfig:
    """conf/debug/checks.yaml: the sanity checks run before tuning."""

    enabled: bool = False
    seed: int = 0
    initial_loss_batches: int = field(default=4, metadata=rule(PositiveInt))
    initial_loss_tolerance: float = field(default=0.15, metadata=rule(UpToOne))
    overfit_batches: int = field(default=2, metadata=rule(PositiveInt))
    overfit_steps: int = field(default=200, metadata=rule(PositiveInt))
    overfit_target: float = field(default=0.99, metadata=rule(UpToOne))
    baseline_epochs: int = field(default=3, metadata=rule(PositiveInt))
    baseline_error_ratio: float = field(default=0.5, metadata=rule(UpToOne))
    independence_batch: int = field(default=4, metadata=rule(PositiveInt))


@dataclass
class TuneConfig:
    """conf/tune/lr.yaml: the learning-rate range test."""

    mode: str = "lr"
    min_lr: float = 1e-6
    max_lr: float = 1.0
    steps: int = 100
    smoothing: float = 0.9
    apply: bool = True


@dataclass
class SearchConfig:
    """`search:` in conf/search/: practicum's knobs of a hyperparameter search (hydra.sweeper reads them)."""

    n_trials: int = field(default=20, metadata=rule(PositiveInt))
    n_jobs: int = field(default=1, metadata=rule(PositiveInt))
    seed: int = 0
    repeats: int = field(default=1, metadata=rule(PositiveInt))
    storage: str | None = None
    study_name: str = MISSING


@dataclass
class StudyDimension:
    path: str = MISSING
    low: float = MISSING
    high: float = MISSING
    log: bool = False


@dataclass
class StudyConfig:
    """`study:` in conf/experiment/grid_vs_random.yaml: search methods compared at equal budgets."""

    methods: list[str] = field(default_factory=lambda: ["grid", "random", "quasi_random"])
    n_trials: int = field(default=9, metadata=rule(PositiveInt))
    study_seeds: list[int] = field(default_factory=lambda: [0])
    max_epochs: int = field(default=4, metadata=rule(PositiveInt))
    space: dict[str, StudyDimension] = field(default_factory=dict)


@dataclass
class PathsConfig:
    """conf/paths/: where data, logs and this run's directory live."""

    root_dir: str = MISSING
    data_dir: str = MISSING
    log_dir: str = MISSING
    output_dir: str = MISSING


SCHEMAS: dict[str, type] = {
    "goal": GoalConfig,
    "diagnosis": DiagnosisConfig,
    "checks": ChecksConfig,
    "tune": TuneConfig,
    "search": SearchConfig,
    "study": StudyConfig,
    "paths": PathsConfig,
}


@functools.cache  # once per process: Hydra warns when a name is stored twice
def register_schemas() -> None:
    """Put the schemas in Hydra's ConfigStore; call before composing."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(group=SCHEMA_GROUP, name=name, node=schema)


def part_name(cfg: DictConfig | Mapping[str, Any], group: str) -> str:
    """The option picked for `group` (`cnn` for `model=cnn`), from the run's `parts:` node; "?"
    where the config has none (composed outside a Hydra run and not by `compose` below)."""
    try:
        name = (cfg.get("parts") or {}).get(group)
    except OmegaConfBaseException:  # `${hydra:...}` with no Hydra run to answer it
        name = None
    return str(name) if name else "?"


def compose(
    conf_dir: str | Path, config_name: str = "train", overrides: Sequence[str] = ()
) -> DictConfig:
    """The config `python <config_name>.py <overrides>` gets, composed outside a Hydra run (tests,
    benchmarks): schemas registered, and `parts:` filled from Hydra's choices."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_schemas()
    with initialize_config_dir(str(conf_dir)):
        cfg = hydra_compose(config_name, overrides=list(overrides), return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    with open_dict(cfg):
        for group in cfg.get("parts") or {}:
            cfg.parts[group] = choices.get(group)
        del cfg["hydra"]
    return cfg
