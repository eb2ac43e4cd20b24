"""Run a practicum script on a disk that fills up at a chosen write.

    python tests/fault_injection.py <from_write> <pattern> <script> [overrides...]

Every file is made durable with `os.fsync` before it replaces its target (src/practicum/platform/files.py),
which is where a full disk shows itself. From the <from_write>-th fsync of a file whose name
contains <pattern> ("" for any file), every such fsync fails with ENOSPC, as it does once the disk
is full. The file's data may already be partly written, as on a real disk.
"""

from __future__ import annotations

import errno
import os
import runpy
import sys

from_write, pattern, script = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.argv = [script, *sys.argv[4:]]
real_fsync = os.fsync
seen = 0


def fsync(fd: int) -> None:
    global seen
    try:
        name = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        name = ""
    if pattern in name:
        seen += 1
        if seen >= from_write:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real_fsync(fd)


os.fsync = fsync
runpy.run_path(script, run_name="__main__")
