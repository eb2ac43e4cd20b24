"""Advice a user can paste: every command the diagnosis prints reproduces the run it diagnoses.

A remedy names its change as a command (`python train.py model.net.hidden_units=64`); before the
diagnosis is shown, each such command gets the run's own overrides in front of the change (a key
the change sets again is left out), so pasted it trains this run's config with that change, not
the defaults. A remedy whose every command is already in effect (a `tune=lr` run told to run
`tune=lr`) is the mode the run is in: it is dropped.

The run's overrides are its command line's (Hydra's task overrides; a sweep trial's, its own),
or the ones an autopilot step was composed from (`using`); without the keys that pick where or
how it ran rather than what it trains (hydra.*, ckpt_path, search.*, autopilot.*).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import shlex
from collections.abc import Iterator

from practicum.methodology.cases import Diagnosis, Remedy

# keys that say where or how a run ran, not what it trains: never part of a reproduced command
OMIT = ("hydra", "ckpt_path", "search", "autopilot")
COMMAND = re.compile(r"`python train\.py((?: [^`]*)?)`")

_given: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "practicum_run_overrides", default=None
)


def key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def kept(override: str) -> bool:
    key = key_of(override)
    return not any(key == omit or key.startswith(f"{omit}.") for omit in OMIT)


@contextlib.contextmanager
def using(overrides: list[str]) -> Iterator[None]:
    """The overrides of the run about to start in this thread (an autopilot step's)."""
    token = _given.set(list(overrides))
    try:
        yield
    finally:
        _given.reset(token)


def run_overrides() -> list[str] | None:
    """The overrides of the running run, or None when they cannot be known (a test's run)."""
    given = _given.get()
    if given is None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        given = list(HydraConfig.get().overrides.task)
    return [o for o in given if kept(o)]


def command(overrides: list[str], change: list[str], multirun: bool = False) -> str:
    """`python train.py <the run's overrides, less the keys the change sets> <the change>`."""
    keys = {key_of(o) for o in change}
    args = [o for o in overrides if key_of(o) not in keys] + list(change)
    flag = ["-m"] if multirun else []
    return " ".join(["python train.py", *flag, *(shlex.quote(a) for a in args)])


def in_effect(overrides: list[str], change: list[str]) -> bool:
    """Every override of the change is already one of the run's (the mode it is in)."""
    have = {(key_of(o), o.split("=", 1)[-1]) for o in overrides}
    return bool(change) and all((key_of(o), o.split("=", 1)[-1]) in have for o in change)


def _parts(arguments: str) -> tuple[list[str], bool]:
    words = shlex.split(arguments)
    multirun = "-m" in words or "--multirun" in words
    return [w for w in words if w not in ("-m", "--multirun")], multirun


def pasteable(diagnosis: Diagnosis, overrides: list[str] | None) -> Diagnosis:
    """The diagnosis with every command made whole for this run, and the remedies that would
    repeat the run's own mode dropped."""
    if overrides is None:
        return diagnosis
    remedies: list[Remedy] = []
    for remedy in diagnosis.remedies:
        found = [_parts(m.group(1)) for m in COMMAND.finditer(remedy.text)]
        if found and all(in_effect(overrides, change) for change, _ in found):
            continue

        def whole(match: re.Match[str]) -> str:
            change, multirun = _parts(match.group(1))
            return f"`{command(overrides, change, multirun)}`"

        remedies.append(Remedy(remedy.key, COMMAND.sub(whole, remedy.text), remedy.changes))
    diagnosis.remedies = remedies
    diagnosis.next_steps = [remedy.text for remedy in remedies]
    if diagnosis.stop:
        diagnosis.stop = COMMAND.sub(
            lambda m: f"`{command(overrides, *_parts(m.group(1)))}`", diagnosis.stop
        )
    return diagnosis
