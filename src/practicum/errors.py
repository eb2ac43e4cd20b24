"""User-facing errors: one clear line that says what is wrong and how to fix it."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """A mistake in the user's config, command line or files; reported as one line, never a trace."""

    def __str__(self) -> str:
        text = super().__str__()
        # raised in a DataLoader worker (an unreadable image), it reaches this process re-raised
        # by torch with the worker's traceback as its message; the line is that traceback's last
        if "\nOriginal Traceback" in text:
            return re.sub(r"^[\w.]+: ", "", text.rstrip().splitlines()[-1])
        return text


class Terminated(KeyboardInterrupt):
    """SIGTERM (`timeout`, `kill`, a scheduler's stop), raised where the process is, so that it
    ends any phase (training, evaluation, the baseline, the report) as a Ctrl-C does."""


def find_user_error(exc: BaseException | None) -> UserError | None:
    """Walk the cause/context chain (Hydra wraps errors raised in constructors) for a UserError."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def report(message: str) -> None:
    """Print one error line to stderr."""
    print(f"practicum: error: {message}", file=sys.stderr, flush=True)


def _key_meant(message: str, cause: str) -> str | None:
    """Hydra's "Could not override 'optimizer.lrr'. To append to your config use +optimizer.lrr=0.1
    (Key 'lrr' is not in struct. Did you mean: 'lr'?)" as the key the user meant."""
    override = re.search(r"Could not override '([^']+)'", message)
    meant = re.search(r"Did you mean(?: one of)?: '([^']+)'", cause)
    if not override or not meant:
        return None
    path = override.group(1)
    parent = path.rpartition(".")[0]
    return f"{path} is not a key of the config: did you mean {parent + '.' if parent else ''}{meant.group(1)}?"


@contextmanager
def composition_errors_in_one_line(exit_code: int) -> Iterator[None]:
    """Report a mistake Hydra finds while composing (a value of the wrong type for a schema's key,
    an unknown key, a bad override) in one line and exit with `exit_code`.

    Hydra prints those in several lines and exits 1 unless HYDRA_FULL_ERROR asks it to raise; so
    it is asked to raise, unless the user set HYDRA_FULL_ERROR to see Hydra's own report.
    """
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )

    if os.environ.get("HYDRA_FULL_ERROR"):
        yield
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    except (ConfigCompositionException, MissingConfigException, OverrideParseException) as exc:
        message = " ".join(str(exc).split())
        cause = str(exc.__cause__ or "").strip().splitlines()
        meant = _key_meant(message, cause[0] if cause else "")
        report(meant or (f"{message} ({cause[0]})" if cause else message))
        sys.exit(exit_code)
    finally:
        os.environ.pop("HYDRA_FULL_ERROR", None)
