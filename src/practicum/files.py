"""Writing a run's files so that a reader (or a crash) never sees half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text(path: Path, text: str) -> Path:
    """Write to a temporary file in the same folder, then move it into place: a rename within one
    folder is atomic, so `path` holds either its old content or all of the new."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, content: Any) -> Path:
    return write_text(path, json.dumps(content, indent=2, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    """Tensors and numpy scalars as numbers; anything else JSON does not know as its text."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
