"""User-facing errors: one clear line that says what is wrong and how to fix it."""

from __future__ import annotations

import sys


class UserError(Exception):
    """A mistake in the user's config, command line or files; reported as one line, never a trace."""


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
