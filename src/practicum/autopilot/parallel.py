"""`autopilot.parallel=N`: the runs of a step's N candidate changes at once, each in a process of
its own, with the cores shared out between them (two uncapped torch processes on two cores ran
25x slower than one).

The processes are forked from a fork server that imported torch and Lightning once, as the
local-parallel launcher's trials are (hydra_plugins/practicum_launcher/local_parallel.py); where
there is none (Windows) the runs go one after the other. A run whose process dies leaves a
`failed` summary.json behind, as any run that died does, and the autopilot reverts it.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from practicum.run.one_run import RunOne

PRELOAD = ["torch", "lightning.pytorch", "practicum.run.one_run"]


def threads_each(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(jobs, 1))


def _run(run_one: RunOne, config: str, threads: int) -> None:
    """One run in a process of its own, with `threads` torch threads."""
    import logging

    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    run_one(OmegaConf.create(config), quiet=True)


def run_at_once(run_one: RunOne, configs: list[DictConfig]) -> list[int]:
    """Run each config in a process of its own, all at once; their exit codes."""
    if len(configs) <= 1 or "forkserver" not in multiprocessing.get_all_start_methods():
        codes = []
        for cfg in configs:
            try:
                run_one(cfg, quiet=True)
                codes.append(0)
            except Exception:
                codes.append(1)
        return codes
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    threads = threads_each(len(configs))

    def one(cfg: DictConfig) -> int:
        text = OmegaConf.to_yaml(cfg, resolve=True)
        process = context.Process(target=_run, args=(run_one, text, threads), name="step")
        process.start()
        process.join()
        return process.exitcode if process.exitcode is not None else 1

    with ThreadPoolExecutor(len(configs), thread_name_prefix="step") as pool:
        return list(pool.map(one, configs))
