"""A command in the caller's process, as if it were a process of its own: `invoke` runs it and
captures what it printed (the tests use it for every command that needs no process of its own)."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from practicum.cli.entry import main

# the warnings a new Python process does not show (outside __main__)
QUIET_BY_DEFAULT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


@dataclass
class Completed:
    """What `invoke` returns: the fields of `subprocess.CompletedProcess` a caller reads."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def invoke(
    command: str,
    *args: str,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """`python <command>.py *args` in this process, from `cwd`, with `env` added to the
    environment: its exit code and what it printed. Warnings print as in a new process."""
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
            warnings.resetwarnings()  # a new process's filters: each warning once per place
            warnings.simplefilter("default")
            for quiet in QUIET_BY_DEFAULT:
                warnings.simplefilter("ignore", quiet)
            code = main(list(args), command)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
    return Completed([f"{command}.py", *args], code, out.getvalue(), err.getvalue())
