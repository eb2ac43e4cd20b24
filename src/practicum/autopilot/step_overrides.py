"""A step's overrides and the config they compose: the command line the autopilot started from,
one change applied on top of the best step's, and the same config however it is spelled."""

from __future__ import annotations

import contextlib
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict


def command_overrides(given: list[str] | None) -> list[str]:
    """The overrides of the command, without the autopilot's own."""
    if given is None:
        from hydra.core.hydra_config import HydraConfig

        given = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return [
        o
        for o in given
        if override_key(o) != "autopilot" and not override_key(o).startswith("autopilot.")
    ]


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def merged(overrides: list[str], change: list[str]) -> list[str]:
    """`overrides` with `change` applied: a key set again replaces its earlier value."""
    keys = {override_key(o) for o in change}
    return [o for o in overrides if override_key(o) not in keys] + list(change)


def canonical(overrides: list[str]) -> frozenset[tuple[str, str]]:
    """The same config, however its overrides are spelled (1e-3 and 0.001)."""
    values = {}
    for o in overrides:
        key, _, value = o.partition("=")
        with contextlib.suppress(ValueError):
            value = repr(float(value))
        values[key.lstrip("+")] = value
    return frozenset(values.items())


def compose_step(overrides: list[str]) -> DictConfig:
    """The config `python train.py <overrides>` gets: from the running app when there is one."""
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        from practicum.config import CONF_DIR, compose

        return compose(CONF_DIR, "train", overrides)
    from hydra import compose as hydra_compose
    from hydra.core.hydra_config import HydraConfig

    from practicum.config import job_config

    # a user's own config folder (hydra.searchpath) holds options the steps name too
    given = HydraConfig.get().overrides.hydra if HydraConfig.initialized() else []
    own = [o for o in given if override_key(o) == "hydra.searchpath"]
    return job_config(
        hydra_compose("train", overrides=[*own, *overrides], return_hydra_config=True)
    )


def step_config(overrides: list[str], root_dir: str, output_dir: Path) -> DictConfig:
    """The validated config of one step, writing to `output_dir`."""
    from practicum.config.validate import validate

    cfg = compose_step(list(overrides))
    with open_dict(cfg):
        cfg.paths.root_dir = root_dir
        cfg.paths.output_dir = str(output_dir)
        # one line per step on the terminal: no progress bar or model table (not a setting
        # of the run, so not in its overrides)
        if "enable_model_summary" in cfg.trainer:
            cfg.trainer.enable_model_summary = False
        if "progress_bar" in (cfg.get("callbacks") or {}):
            cfg.callbacks.progress_bar = None
            cfg.trainer.enable_progress_bar = False
    validate(cfg)
    return cfg


def fingerprint(cfg: DictConfig) -> str:
    """The resolved config, without where it writes: two steps with the same fingerprint train
    the same run."""
    import json

    content = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(content, dict)
    content.pop("paths", None)
    return json.dumps(content, sort_keys=True, default=str)
