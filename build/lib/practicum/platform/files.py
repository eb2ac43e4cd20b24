"""Writing a run's files so that a reader, a kill or a full disk never leaves half of one.

Every file goes to a temporary file in the target's own folder (so the final rename never crosses
filesystems), is flushed to disk, then moved into place with `os.replace`, which is atomic within a
folder: the target holds either all of its old content or all of the new. A failed write removes
its temporary file; one cut off by a kill leaves `.<name>.<random>.tmp` beside the target, inside
the run directory, where `remove_stale_temps` finds it.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".tmp"
# the write failed for lack of room, not because of what was written
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# the permissions a plain `open(path, "w")` would give (mkstemp makes files private to the owner)
_umask = os.umask(0)
os.umask(_umask)
FILE_MODE = 0o666 & ~_umask


@contextmanager
def open_atomic(path: Path | str, mode: str = "w", **options: Any) -> Iterator[IO[Any]]:
    """A file to write `path`'s new content into; on leaving the block it becomes `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode, **options) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # say which file could not be written
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (a crash of the machine right after keeps the new file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not sync folders; the rename is still atomic
    finally:
        os.close(fd)


def write_text(path: Path | str, text: str) -> Path:
    with open_atomic(path, "w") as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: Path | str, content: bytes) -> Path:
    with open_atomic(path, "wb") as handle:
        handle.write(content)
    return Path(path)


def write_json(path: Path | str, content: Any) -> Path:
    return write_text(path, json.dumps(content, indent=2, default=_plain) + "\n")


def save_figure(fig: Any, path: Path | str, **options: Any) -> Path:
    """A matplotlib figure as a file, written like every other file of the run."""
    fmt = options.pop("format", Path(path).suffix.lstrip(".") or "png")
    with open_atomic(path, "wb") as handle:
        fig.savefig(handle, format=fmt, **options)
    return Path(path)


def remove_stale_temps(folder: Path | str) -> list[Path]:
    """Temporary files a killed write left in `folder` and below; removed, and returned."""
    stale = [p for p in Path(folder).rglob(f".*{TEMP_SUFFIX}") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def no_space(exc: BaseException | None) -> OSError | None:
    """The disk-full error in an exception's chain (Lightning and Hydra wrap errors), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def new_dir(parent: str, stamp: str = "%Y-%m-%d_%H-%M-%S") -> str:
    """A new folder under `parent`, named by the time: `<stamp>`, or `<stamp>_2`, `_3`... when a
    run started in the same second holds it. Creating the folder claims the name, so two processes
    never get the same one. Hydra calls it through the `practicum.new_dir` resolver."""
    base = Path(parent)
    base.mkdir(parents=True, exist_ok=True)
    name = datetime.now().strftime(stamp)
    for n in range(1, 10_000):
        candidate = base / (name if n == 1 else f"{name}_{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return str(candidate)
    raise FileExistsError(f"{base} holds 10000 folders named {name}*")


def register_resolvers() -> None:
    """`${practicum.new_dir:<parent>}` in conf/hydra/default.yaml names run and sweep folders;
    `${practicum.rank_suffix:}` keeps the ranks of a DDP run out of each other's log file; the
    SLURM launcher's requests follow the trial's config (`${practicum.slurm_gpus:...}`)."""
    from omegaconf import OmegaConf

    from practicum.platform import cluster, ranks

    if not OmegaConf.has_resolver("practicum.new_dir"):
        # cached: the name is claimed once per config, as Hydra's `now` is computed once
        OmegaConf.register_resolver("practicum.new_dir", new_dir, use_cache=True)
    if not OmegaConf.has_resolver("practicum.rank_suffix"):
        OmegaConf.register_resolver("practicum.rank_suffix", ranks.log_suffix)
    for name, resolver in cluster.RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_resolver(name, resolver)


def _plain(value: Any) -> Any:
    """Tensors and numpy scalars as numbers; anything else JSON does not know as its text."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
