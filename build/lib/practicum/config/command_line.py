"""The command line's overrides, read with Hydra's own override parser (the grammar Hydra applies),
for the checks that run before Hydra composes anything and for reading a sweep's trials back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override
from hydra.errors import HydraException

from practicum.errors import UserError

# Hydra's flags that take the next argument as their value (`--cfg job`, `-cn train`)
FLAGS_WITH_VALUE = {
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--experimental-rerun",
    "--shell-completion",
    "-sc",
}


def override_args(argv: Iterable[str]) -> list[str]:
    """The arguments that are overrides: not flags, nor the values of flags."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in FLAGS_WITH_VALUE
        else:
            args.append(arg)
    return args


def parse(argv: Iterable[str]) -> list[Override]:
    """Parse the overrides among `argv`; a malformed one is one clear line naming it."""
    parser = OverridesParser.create()
    parsed = []
    for arg in override_args(argv):
        try:
            parsed += parser.parse_overrides([arg])
        except HydraException as exc:
            lines = str(exc).splitlines()
            detail = (lines[1] if len(lines) > 1 else lines[0]).strip()
            raise UserError(
                f"cannot read the override {arg!r} ({detail}): write key=value, "
                "see https://hydra.cc/docs/advanced/override_grammar/basic/"
            ) from None
    return parsed


def values(argv: Iterable[str]) -> dict[str, Any]:
    """`{key: value}` of the overrides that set one value (`optimizer.lr=1e-3` -> 0.001), without
    sweeps and deletions; a group's key is its name (`model`, `search/space`)."""
    return {
        o.key_or_group: o.value()
        for o in parse(argv)
        if not o.is_delete() and not o.is_sweep_override()
    }


def choices(argv: Iterable[str]) -> dict[str, list[str]]:
    """`{key: [option, ...]}` of every override, a sweep's options listed (`model=mlp,cnn`); only
    plain choice lists are expanded: `glob()` (which picks among the files that exist), ranges and
    intervals stay Hydra's to expand and check."""
    found: dict[str, list[str]] = {}
    for o in parse(argv):
        if o.is_delete():
            continue
        if not o.is_sweep_override():
            found[o.key_or_group] = [str(o.value())]
        elif o.is_choice_sweep() and not isinstance(o.value(), Glob):
            found[o.key_or_group] = [str(v) for v in o.sweep_string_iterator()]
    return found


def globs(argv: Iterable[str]) -> dict[str, Glob]:
    """`{group: Glob}` of the `group=glob(...)` sweeps, which pick among the files that exist."""
    return {
        o.key_or_group: o.value()
        for o in parse(argv)
        if o.is_sweep_override() and isinstance(o.value(), Glob)
    }


def text_values(overrides: Iterable[str]) -> dict[str, str]:
    """`{key: value as written}` of a trial's saved overrides (`optimizer.lr=0.003` -> "0.003")."""
    found = {}
    for o in parse(overrides):
        if not o.is_delete():
            found[o.key_or_group] = o.input_line.split("=", 1)[1]
    return found
