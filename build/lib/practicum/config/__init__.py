"""What a run is made of, before anything runs: composing conf/, the typed schemas of the groups
practicum owns, the one checker of a config node (validate.py, with checker.py for signatures
and constraints.py for ranges), trust of `_target_`s, the command line's overrides, the goal and
the knobs the autopilot may turn. Nothing here imports torch."""

from practicum.config.checker import check_fields, check_ranges
from practicum.config.schemas import (
    AUTOPILOT_KNOBS,
    CONF_DIR,
    SCHEMAS,
    AutopilotConfig,
    ChecksConfig,
    DiagnosisConfig,
    EntryConfig,
    GoalConfig,
    PathsConfig,
    SchedulerConfig,
    SearchConfig,
    StudyConfig,
    StudyDimension,
    TuneConfig,
    compose,
    job_config,
    part_name,
    register_schemas,
    settings,
    top_level_keys,
    typed_field,
)

__all__ = [
    "AUTOPILOT_KNOBS",
    "CONF_DIR",
    "SCHEMAS",
    "AutopilotConfig",
    "ChecksConfig",
    "DiagnosisConfig",
    "EntryConfig",
    "GoalConfig",
    "PathsConfig",
    "SchedulerConfig",
    "SearchConfig",
    "StudyConfig",
    "StudyDimension",
    "TuneConfig",
    "check_fields",
    "check_ranges",
    "compose",
    "job_config",
    "part_name",
    "register_schemas",
    "settings",
    "top_level_keys",
    "typed_field",
]
