"""practicum: the practical methodology of training deep models, as a Lightning + Hydra template.

Importing the package is cheap; torch and Lightning load only when a run starts.

The code is grouped by role (docs/extending.md has the map): `cli` (the commands and their modes),
`autopilot` and `search` (modes that run many configs), `run` (one run), `methodology`, `tasks`,
`data`, `nets`, `config` (compose, check, trust) and `platform` (what the machine is). Modules that
moved keep their old dotted paths (`practicum.nets.generative.ConvVAE` in a checkpoint written
before the move still names the class): `MOVED` maps them, and the finder below answers for them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

__version__ = "0.1.0"

# old dotted path -> where the module lives now
MOVED = {
    "practicum.arguments": "practicum.config.checker",
    "practicum.constraints": "practicum.config.constraints",
    "practicum.config_tree": "practicum.config.config_tree",
    "practicum.knobs": "practicum.config.knobs",
    "practicum.overrides": "practicum.config.command_line",
    "practicum.trust": "practicum.config.trust",
    "practicum.validate": "practicum.config.validate",
    "practicum.methodology.goal": "practicum.config.goal",
    "practicum.build": "practicum.run.build",
    "practicum.checkpointing": "practicum.run.checkpoints",
    "practicum.evaluate": "practicum.run.evaluate",
    "practicum.predict": "practicum.run.predict",
    "practicum.resume": "practicum.run.resume",
    "practicum.summary": "practicum.methodology.run_summary",
    "practicum.wandb_runs": "practicum.run.wandb_runs",
    "practicum.methodology.baseline": "practicum.run.baseline",
    "practicum.modes": "practicum.cli.modes",
    "practicum.cluster": "practicum.platform.cluster",
    "practicum.ranks": "practicum.platform.ranks",
    "practicum.gpu": "practicum.platform.gpu",
    "practicum.files": "practicum.platform.files",
    "practicum.methodology.summary": "practicum.methodology.outcome",
    "practicum.methodology.pictures": "practicum.tasks.pictures",
    "practicum.search.summary": "practicum.search.sweep_summary",
    "practicum.autopilot.overrides": "practicum.autopilot.step_overrides",
    "practicum.nets.generative": "practicum.nets.generators",
    "practicum.nets.shapes": "practicum.nets.sizes",
    "practicum.data.shapes": "practicum.data.synthetic_shapes",
}


def current_name(dotted: str) -> str:
    """`dotted` (a module or a name in one) with a moved module's old path replaced by its new one."""
    for old in sorted(MOVED, key=len, reverse=True):
        if dotted == old or dotted.startswith(old + "."):
            return MOVED[old] + dotted[len(old) :]
    return dotted


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old dotted path as the module that now lives elsewhere (the same object)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system stamped the old name's spec on the real module: give it back its own
        module.__spec__ = module.__spec__.loader_state


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
