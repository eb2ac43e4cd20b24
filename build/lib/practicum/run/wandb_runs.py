"""W&B runs that never block and are easy to find: offline without credentials, one run per trial
of a sweep, the trials of one sweep grouped together."""

from __future__ import annotations

import netrc
import os
import socket
import sys
import urllib.parse
from typing import Any


def offline_without_credentials() -> None:
    """W&B must never block on a login prompt or a network it cannot reach: without credentials,
    or when its server does not answer, it logs offline into the run directory."""
    if os.environ.get("WANDB_MODE"):
        return
    try:
        logged_in = netrc.netrc().authenticators(_host()) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        logged_in = False
    if not (os.environ.get("WANDB_API_KEY") or logged_in):
        os.environ["WANDB_MODE"] = "offline"
    elif not _reachable(_host(), _port()):
        print(
            f"W&B: {_host()} does not answer; logging offline into the run directory "
            "(upload later with `wandb sync`)",
            file=sys.stderr,
        )
        os.environ["WANDB_MODE"] = "offline"


def _base_url() -> urllib.parse.SplitResult:
    return urllib.parse.urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))


def _host() -> str:
    return _base_url().hostname or "api.wandb.ai"


def _port() -> int:
    url = _base_url()
    return url.port or (80 if url.scheme == "http" else 443)


def _reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def sweep_trial() -> tuple[str, int] | None:
    """(sweep name, job number) inside a Hydra multirun job, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:
        return None
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return f"{hydra_cfg.job.name}-{os.path.basename(hydra_cfg.sweep.dir)}", int(hydra_cfg.job.num)


def sweep_identity(node: Any) -> dict[str, Any]:
    """In a sweep: the W&B logger arguments that group its trials under the sweep's name and
    number each trial's run; nothing outside a sweep."""
    trial = sweep_trial()
    if trial is None:
        return {}
    sweep, job = trial
    return {
        "group": node.get("group") or sweep,
        "name": f"{node.get('name') or sweep}-trial{job}",
        "tags": [*(node.get("tags") or []), "sweep"],
    }


def finish(failed: bool = False) -> None:
    """Close the W&B run of this run, so the next trial of a sweep in this process gets its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)
