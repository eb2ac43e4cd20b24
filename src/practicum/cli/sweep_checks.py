"""The check of a search's command line against the space Hydra composed for it: a value given
for a key the search varies would take that key out of the search without a word (every trial
would train at `optimizer.lr=1e-6`), so it is refused unless `search.keep_fixed=true` says so."""

from __future__ import annotations

from typing import Any

from practicum.config import command_line as overrides
from practicum.errors import UserError

# how a message names each search
SEARCH_NAMES = {"quasi_random": "quasi-random", "tpe": "TPE"}


def check_pinned_knobs(cfg: Any, argv: list[str]) -> None:
    """One line for the first command-line value of a key in `hydra.sweeper.params`."""
    search = overrides.values(argv).get("search")
    settings = cfg.get("search") or {}
    if not search or settings.get("keep_fixed"):
        return
    params = cfg.hydra.sweeper.get("params") or {}
    for o in overrides.parse(argv):
        if o.is_delete() or o.is_sweep_override() or o.key_or_group not in params:
            continue
        name = SEARCH_NAMES.get(str(search), str(search))
        raise UserError(
            f"{o.input_line} fixes a key the {name} search varies: drop it to search it, "
            "or pass search.keep_fixed=true"
        )
