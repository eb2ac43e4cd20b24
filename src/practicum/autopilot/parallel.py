"""`autopilot.parallel=N`: the runs of a step's N candidate changes at once, each in a process of
its own, with the cores shared out between them (two uncapped torch processes on two cores ran
25x slower than one).

Each process is forked from the autopilot's own when the runs get one thread each (it has
imported everything a run needs: the run starts at once), else from a fork server that imported
torch and Lightning once, started while the baseline trains (as the local-parallel launcher's
trials are, hydra_plugins/practicum_launcher/local_parallel.py). Where neither exists (Windows)
the runs go one after the other. A run whose process dies leaves a
`failed` summary.json behind, as any run that died does, and the autopilot reverts it.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from practicum.methodology.commands import using

if TYPE_CHECKING:
    from practicum.run.one_run import RunOne

PRELOAD = ["torch", "lightning.pytorch", "practicum.run.one_run"]


def threads_each(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(jobs, 1))


def _run(run_one: RunOne, config: str, threads: int, overrides: list[str]) -> None:
    """One run in a process of its own, with `threads` torch threads."""
    import logging

    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    from practicum.platform.files import register_resolvers

    register_resolvers()
    with using(overrides):
        run_one(OmegaConf.create(config), quiet=True)


def start_method(threads: int) -> str:
    """`fork` when each run gets one thread: the child has everything this process imported and
    starts at once. A forked child that runs torch on several threads hangs (GNU OpenMP's pool
    does not survive a fork), so with more threads each the runs come from the fork server."""
    return (
        "fork"
        if threads == 1 and "fork" in multiprocessing.get_all_start_methods()
        else "forkserver"
    )


def warm_up(jobs: int) -> None:
    """Start the fork server now: it imports torch and Lightning in its own process while the
    baseline trains, so the first step of candidates does not wait for those imports."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    if start_method(threads_each(jobs)) != "forkserver":
        return
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()


def run_at_once(
    run_one: RunOne, configs: list[DictConfig], overrides: list[list[str]]
) -> list[int]:
    """Run each config in a process of its own, all at once; their exit codes. `overrides`: the
    command line of each, which its advice repeats."""
    if len(configs) <= 1 or "forkserver" not in multiprocessing.get_all_start_methods():
        codes = []
        for cfg, given in zip(configs, overrides, strict=True):
            try:
                with using(given):
                    run_one(cfg, quiet=True)
                codes.append(0)
            except Exception:
                codes.append(1)
        return codes
    threads = threads_each(len(configs))
    method = start_method(threads)
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(PRELOAD)

    def one(job: tuple[DictConfig, list[str]]) -> int:
        # interpolations kept: the run resolves them, after its data fills in `auto` sizes
        text = OmegaConf.to_yaml(job[0])
        process = context.Process(target=_run, args=(run_one, text, threads, job[1]), name="step")
        process.start()
        process.join()
        return process.exitcode if process.exitcode is not None else 1

    with ThreadPoolExecutor(len(configs), thread_name_prefix="step") as pool:
        return list(pool.map(one, zip(configs, overrides, strict=True)))
