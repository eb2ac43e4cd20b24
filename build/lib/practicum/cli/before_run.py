"""The check of a single run, on the config Hydra composed for it, before Hydra makes or touches
any run directory: a refused run leaves nothing behind and writes nothing into an existing one.
(A sweep's trials are checked one by one as they start: a refused trial is recorded and the sweep
goes on.)"""

from __future__ import annotations

import os
import sys
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from practicum.errors import UserError, report

USER_ERROR_EXIT = 2


def run_config(config: DictConfig) -> DictConfig:
    """The config the task function will get (no `hydra` node), with the run directory, which
    Hydra has not made yet, named but not created."""
    HydraConfig.instance().set_config(config)
    cfg = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    with open_dict(cfg):
        if "paths" in cfg:
            if OmegaConf.select(config, "hydra.runtime.cwd") is None:
                cfg.paths.root_dir = os.getcwd()
            cfg.paths.output_dir = "<the run directory>"
    return cfg


class CheckBeforeRun(Callback):
    """Hydra calls `on_run_start` with the one composition of a single run, before `run_job`."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from practicum.config.validate import validate

        if os.environ.get("LOCAL_RANK", "0") != "0":
            return  # a DDP rank Lightning started reruns the config rank 0 checked
        try:
            validate(run_config(config))
        except UserError as exc:
            report(str(exc))
            sys.exit(USER_ERROR_EXIT)
