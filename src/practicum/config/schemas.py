"""Typed schemas of the config groups practicum owns, and the names of a run's parts.

Each group's YAML lists its schema first in `defaults` (`- /goal_schema@_here_`), so Hydra checks
types and missing values while composing: `goal.target=abc` fails before anything runs. A field's
range rides in its metadata (`rule(PositiveInt)`), checked by validate.py and by `settings`, which
turns a node into its dataclass for the code that uses it. Nothing heavy is imported: `--help` and
`--cfg job` use these. Groups that build objects (model, data, optimizer, ...) have no schema
here: their constructors' signatures are their schema (checker.py).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from practicum.config.checker import check_ranges, did_you_mean
from practicum.config.constraints import (
    SEED,
    Fraction,
    IncreasingShares,
    Positive,
    PositiveInt,
    UpToOne,
    at_least,
    one_of,
    rule,
)
from practicum.errors import UserError

T = TypeVar("T")


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
    # after training a classifier: which labels look wrong, examples shared between splits, the
    # class balance and the worst mistakes (run/audit.py)
    audit: bool = True
    # folds of the cross-fitting that scores each training label out of sample
    audit_folds: int = field(default=5, metadata=rule(at_least(2)))
    # image files: audit the training labels too, by cross-fitting the net itself (costs about
    # folds - 1 trainings); validation and test labels are always audited
    audit_train_images: bool = False
    # every run: frozen or unoptimized parameters, probabilities as outputs, dead units at the first
    # and last epoch, ... (methodology/code_facts.py); a run that misses its goal with one is a
    # code_defect
    code_facts: bool = True


@dataclass
class ChecksConfig:
    """conf/debug/checks.yaml: the sanity checks run before tuning."""

    enabled: bool = False
    seed: int = 0
    initial_loss_batches: int = field(default=4, metadata=rule(PositiveInt))
    initial_loss_tolerance: float = field(default=0.25, metadata=rule(UpToOne))
    overfit_batches: int = field(default=2, metadata=rule(PositiveInt))
    overfit_steps: int = field(default=500, metadata=rule(PositiveInt))
    overfit_target: float = field(default=0.99, metadata=rule(UpToOne))
    baseline_epochs: int = field(default=3, metadata=rule(PositiveInt))
    baseline_error_ratio: float = field(default=0.5, metadata=rule(UpToOne))
    independence_batch: int = field(default=4, metadata=rule(PositiveInt))
    # dead or saturated units are counted on the first training examples, this many at least
    units_examples: int = field(default=64, metadata=rule(PositiveInt))


@dataclass
class TuneConfig:
    """conf/tune/: the learning-rate range test (Smith 2015) and whether to train with its lr (lr);
    the learning curve over nested shares of the training split (data_size)."""

    mode: str = field(default="lr", metadata=rule(one_of("lr", "data_size")))
    min_lr: float = field(default=1e-6, metadata=rule(Positive))
    max_lr: float = field(default=1.0, metadata=rule(Positive))
    steps: int = field(default=100, metadata=rule(at_least(2)))  # mini-batches in the sweep
    smoothing: float = field(default=0.9, metadata=rule(Fraction))  # of the loss curve
    apply: bool = True
    # data_size: the shares of the training split, and the training seeds of each
    fractions: list[float] = field(
        default_factory=lambda: [0.125, 0.25, 0.5, 1.0], metadata=rule(IncreasingShares)
    )
    seeds: int = field(default=2, metadata=rule(PositiveInt))
    equal_steps: bool = True  # a subset k times smaller trains k times the epochs

    def __post_init__(self) -> None:
        if not self.min_lr < self.max_lr:
            raise UserError(
                f"tune.min_lr={self.min_lr:g}, tune.max_lr={self.max_lr:g}: need min_lr < max_lr, "
                "e.g. 1e-6 and 1"
            )

    def test_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `lr_range_test` (add `seed=cfg.seed`)."""
        return {
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "steps": self.steps,
            "smoothing": self.smoothing,
        }


@dataclass
class SearchConfig:
    """`search:` in conf/search/: practicum's knobs of a hyperparameter search (hydra.sweeper reads them)."""

    n_trials: int = field(default=20, metadata=rule(PositiveInt))
    # trials proposed at once; null: as many as the launcher runs at once
    n_jobs: int | None = field(default=None, metadata=rule(PositiveInt))
    seed: int = 0
    repeats: int = field(default=1, metadata=rule(PositiveInt))
    storage: str | None = None
    study_name: str = MISSING
    # Optuna's pruner: none, median, asha (successive halving) or hyperband; a trial's resource
    # is its epochs: none is pruned before min_resource, rungs grow by reduction_factor
    pruner: str = field(
        default="none", metadata=rule(one_of("none", "median", "asha", "hyperband"))
    )
    min_resource: int = field(default=1, metadata=rule(PositiveInt))
    reduction_factor: int = field(default=3, metadata=rule(at_least(2)))
    # a command-line value for a key the search varies is refused unless this is true
    keep_fixed: bool = False


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


@dataclass
class EntryConfig:
    """The top-level keys of conf/train.yaml, eval.yaml and predict.yaml (each file has some of
    them). Not a Hydra schema, since the files' other keys are config groups: validate.py checks
    the keys a config has against these fields (`check_entry_values`)."""

    task_name: str | int = "train"
    seed: int = field(default=42, metadata=rule(SEED))
    ckpt_path: str | None = None
    num_threads: int | None = field(default=None, metadata=rule(at_least(1)))
    test: bool = True
    verbose: bool = False
    compile: bool = False
    # eval.py: the split to measure
    split: str = field(default="test", metadata=rule(one_of("train", "val", "test")))
    # predict.py: what to predict, where the predictions go, how many inputs per forward pass
    input: str = MISSING
    output: str = MISSING
    batch_size: int = field(default=256, metadata=rule(PositiveInt))


@dataclass
class SchedulerConfig:
    """conf/scheduler/: the learning-rate schedule a task wires to its optimizer (Task.configure_optimizers)."""

    factory: Any = None  # a `_target_` node, checked against its target's signature
    interval: str = field(default="epoch", metadata=rule(one_of("epoch", "step")))
    monitor: str | None = None


# the remedies the autopilot may apply (`autopilot.knobs` picks some; the diagnosis names them)
AUTOPILOT_KNOBS = (
    "lower_lr",
    "raise_lr",
    "range_test",
    "stabilize",
    "train_longer",
    "capacity",
    "smaller",
    "regularize",
    "less_regularization",
    "early_stopping",
    "collapse",
)


@dataclass
class AutopilotConfig:
    """conf/autopilot/: diagnose, make one change, rerun; keep it only if it beats the noise."""

    max_runs: int = field(default=8, metadata=rule(PositiveInt))  # training runs, all steps
    max_minutes: float = field(default=60.0, metadata=rule(Positive))
    seeds: int = field(default=1, metadata=rule(PositiveInt))  # runs per step, their mean
    knobs: list[str] | None = None  # the remedies it may apply (AUTOPILOT_KNOBS); null: all
    min_gain: float = field(default=0.005, metadata=rule(Positive))  # the noise's floor
    resume: str | None = None  # an autopilot folder to continue
    # candidate changes tried at once per step, each in a process of its own (the best kept)
    parallel: int = field(default=1, metadata=rule(PositiveInt))

    def __post_init__(self) -> None:
        for knob in self.knobs or []:
            if knob not in AUTOPILOT_KNOBS:
                raise UserError(
                    f"autopilot.knobs: unknown knob {knob!r}: "
                    f"{did_you_mean('', knob, list(AUTOPILOT_KNOBS))}"
                )
        if self.knobs is not None and not self.knobs:
            raise UserError("autopilot.knobs=[] leaves nothing to turn: name some, or pass null")


SCHEMAS: dict[str, type] = {
    "goal": GoalConfig,
    "diagnosis": DiagnosisConfig,
    "checks": ChecksConfig,
    "tune": TuneConfig,
    "search": SearchConfig,
    "study": StudyConfig,
    "paths": PathsConfig,
    "autopilot": AutopilotConfig,
}


@functools.cache  # once per process: Hydra warns when a name is stored twice
def register_schemas() -> None:
    """Put the schemas in Hydra's ConfigStore; call before composing."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        # `<group>_schema`, outside any group: not an option `--help` lists
        store.store(name=f"{name}_schema", node=schema)


def settings(node: Mapping[str, Any] | None, schema: type[T], group: str) -> T:
    """A config node (or a plain mapping) as its schema's dataclass: an unknown key, a wrong type
    or a value out of range is one UserError line."""
    values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    values = dict(values or {})
    names = [f.name for f in dataclasses.fields(schema)]
    for key in values:
        if key not in names:
            raise UserError(f"{group}.{key} is not a setting: {did_you_mean(group, key, names)}")
    typed = OmegaConf.structured(schema)
    for key, value in values.items():
        try:
            typed[key] = value
        except OmegaConfBaseException:
            kind = KINDS.get(str(typed_field(schema, key).type), str(typed_field(schema, key).type))
            raise UserError(f"{group}.{key}={value!r} is invalid: {key} must be {kind}") from None
    check_ranges(typed, group)
    return OmegaConf.to_object(typed)


# how a message names a schema field's type
KINDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "text"}


def typed_field(schema: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(schema) if f.name == name)


# conf/ ships inside the package (src/practicum/conf links to the repository's conf/)
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@functools.cache
def top_level_keys(conf_dir: Path = CONF_DIR) -> frozenset[str]:
    """Every key a config may have at its top: the config groups (folders of conf/), the keys of
    the entry files (train.yaml, eval.yaml, predict.yaml) and of the files that write at the top
    (`# @package _global_`), and the schemas' groups. Empty when there is no conf/ folder."""
    if not conf_dir.is_dir():
        return frozenset()
    keys = {p.name for p in conf_dir.iterdir() if p.is_dir()} | set(SCHEMAS) | {"hydra"}
    keys |= {f.name for f in dataclasses.fields(EntryConfig)}
    for path in conf_dir.rglob("*.yaml"):
        header = itertools.takewhile(
            lambda line: line.startswith("#"), path.read_text().splitlines()
        )
        if path.parent == conf_dir or any("@package _global_" in line for line in header):
            node = OmegaConf.load(path)
            keys |= (
                {str(k) for k in node if k != "defaults"} if isinstance(node, DictConfig) else set()
            )
    return frozenset(keys)


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
    return job_config(cfg)


def job_config(cfg: DictConfig) -> DictConfig:
    """A config composed with Hydra's own node as a run sees it: `parts:` filled from Hydra's
    choices, the `hydra` node dropped."""
    choices = cfg.hydra.runtime.choices
    with open_dict(cfg):
        for group in cfg.get("parts") or {}:
            cfg.parts[group] = choices.get(group)
        del cfg["hydra"]
    return cfg
