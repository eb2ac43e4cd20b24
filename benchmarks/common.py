"""What the benchmark sections and their worker scripts share.

Nothing here imports torch or Lightning at module level: the runner stays light, and a worker
imports them before its timed part starts.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CONF_DIR = ROOT / "conf"
# a worker's last line of output: this prefix, then its measurements as JSON
RESULT_PREFIX = "BENCH_RESULT "


class BenchError(RuntimeError):
    """A benchmark could not measure what it should (a run failed or wrote no result)."""


@dataclass
class Settings:
    """`--quick` picks the smaller counts; `--repeats N` replaces every section's repeat count."""

    quick: bool = False
    repeats: int | None = None

    def count(self, full: int, quick: int) -> int:
        return self.repeats or (quick if self.quick else full)

    def size(self, full: int, quick: int) -> int:
        """Sizes (epochs, steps) follow --quick only; --repeats does not change them."""
        return quick if self.quick else full


@dataclass
class ProcessRun:
    """One finished child process: wall time, CPU time and peak RSS from the kernel's own accounting."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int
    output: str

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.output.strip().splitlines()[-lines:])


def run_process(
    args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 900
) -> ProcessRun:
    """Run a command from the project root, stdout+stderr to a file (a pipe is no TTY either)."""
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(args),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        try:
            # wait4 gives this child's own rusage: peak RSS and CPU time of exactly this run
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        wall_s = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read().decode(errors="replace")
    peak_rss_bytes = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # KiB on Linux
    return ProcessRun(
        wall_s=wall_s,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=peak_rss_bytes / 2**20,
        returncode=process.returncode,
        output=output,
    )


def require_success(run: ProcessRun, what: str) -> ProcessRun:
    if run.returncode != 0:
        raise BenchError(f"{what} exited with {run.returncode}:\n{run.tail()}")
    return run


def run_worker(script: str, *args: str, what: str) -> dict[str, Any]:
    """Run one of the worker scripts in a fresh interpreter and return the measurements it reported."""
    run = require_success(run_process([sys.executable, str(BENCH_DIR / script), *args]), what)
    for line in reversed(run.output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise BenchError(f"{what} reported no result:\n{run.tail()}")


def report(**values: Any) -> None:
    """A worker's last word: its measurements on one line that `run_worker` reads back."""
    print(RESULT_PREFIX + json.dumps(values), flush=True)


def python_script(*args: str) -> list[str]:
    """`python <args>` with this interpreter (the project's venv under `make bench`)."""
    return [sys.executable, *args]


# -- config -------------------------------------------------------------------------------------


def compose_config(output_dir: str | Path, overrides: Sequence[str] = ()) -> Any:
    """The config `python train.py <overrides>` would get, writing under `output_dir` (as the tests do)."""
    from omegaconf import open_dict

    from practicum.config import compose

    cfg = compose(CONF_DIR, "train", overrides)
    with open_dict(cfg):
        cfg.paths.root_dir = str(output_dir)
        cfg.paths.output_dir = str(Path(output_dir) / "run")
    return cfg


def fit_config(output_dir: str | Path, epochs: int, overrides: Sequence[str] = ()) -> Any:
    """The default config for a fixed-length fit on the CPU (where the hand-written loop runs):
    no early stop, no linear baseline."""
    return compose_config(
        output_dir,
        [
            "trainer.accelerator=cpu",
            f"trainer.max_epochs={epochs}",
            f"callbacks.early_stopping.patience={epochs + 1}",
            "diagnosis.baseline_model=null",
            *overrides,
        ],
    )


# -- numbers ------------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min and max of repeated measurements, plus the raw values."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": [round(v, 4) for v in values],
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (what `uptime` shows)."""
    return [round(v, 2) for v in os.getloadavg()]


def current_rss_mb() -> dict[str, float]:
    """This process's resident set now, in MiB: total, anonymous (heap) and file-backed (mapped
    libraries). Linux /proc; elsewhere only the peak total is known."""
    fields = {"VmRSS": "total", "RssAnon": "anon", "RssFile": "file"}
    try:
        with open("/proc/self/status") as status:
            lines = [line.split() for line in status if line.split(":")[0] in fields]
        return {fields[line[0].rstrip(":")]: int(line[1]) / 1024 for line in lines}
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"total": peak / 2**20 if sys.platform == "darwin" else peak / 2**10}


def mark(ok: bool | None) -> str:
    """A table cell for a target: met, missed, or not measured."""
    if ok is None:
        return "-"
    return "[green]yes[/green]" if ok else "[red]no[/red]"


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """With a path, profile the block with pyinstrument and write its text report there."""
    if not path:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        Path(path).write_text(
            profiler.output_text(unicode=True, show_all=bool(os.environ.get("PROFILE_ALL")))
        )
