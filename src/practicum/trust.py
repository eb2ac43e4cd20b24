"""The one list of config targets practicum will instantiate.

Hydra 1.4 refuses a `_target_` that trusted code did not whitelist, so a config file, an override
or a checkpoint cannot make practicum run arbitrary code. To build objects from your own package,
add its prefix here (for example "my_project.*"): the list lives in code on purpose, never in config.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

TRUSTED_TARGETS: tuple[str, ...] = (
    "practicum.*",
    "torch.nn.*",
    "torch.optim.*",
    "torchvision.models.*",
    "torchvision.transforms.*",
    "torchvision.datasets.*",
    "torchvision.ops.*",
    "torchmetrics.*",
    "lightning.pytorch.Trainer",
    "lightning.pytorch.callbacks.*",
    "lightning.pytorch.loggers.*",
    "lightning.pytorch.profilers.*",
    "lightning.pytorch.strategies.*",
    "lightning.pytorch.plugins.*",
)


def is_trusted(target: str) -> bool:
    """True when `target` matches an entry: exact, or below a `prefix.*`."""
    return any(
        fnmatchcase(target, entry) if entry.endswith(".*") else target == entry
        for entry in TRUSTED_TARGETS
    )


def instantiate(node: Any, **kwargs: Any) -> Any:
    """Hydra's instantiate with practicum's whitelist; the only place objects are built from config."""
    from hydra.utils import instantiate as hydra_instantiate

    return hydra_instantiate(node, _execution_whitelist_=TRUSTED_TARGETS, **kwargs)
