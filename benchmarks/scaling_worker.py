"""Worker of the `scaling` section: one practicum fit of a fixed number of epochs, timed.

    python benchmarks/scaling_worker.py OUTPUT_DIR EPOCHS OVERRIDE [OVERRIDE ...]

Same build as `python train.py` (default callbacks, checkpoints, CSV logger), no early stop. It
reports the load time (`build_datamodule`), the fit time, the training examples, and the peak
resident set of its DataLoader worker processes, sampled every 0.1 s from /proc (the section reads
this process's own peak from the kernel when it exits).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

from common import fit_config, report


class WorkerRss(threading.Thread):
    """The largest resident set (MiB) any child process of this one reached while it ran."""

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak_mb, self.seen = interval, 0.0, set()
        self.stopped = threading.Event()

    def run(self) -> None:
        children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
        while not self.stopped.wait(self.interval):
            try:
                pids = children.read_text().split()
            except OSError:
                return
            for pid in pids:
                self.seen.add(pid)
                self.peak_mb = max(self.peak_mb, rss_mb(pid))


def rss_mb(pid: str) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("epochs", type=int)
    parser.add_argument("overrides", nargs="+")
    args = parser.parse_args()

    import lightning.pytorch as pl

    from practicum.run.build import build_datamodule, build_task, build_trainer

    sampler = WorkerRss()
    sampler.start()
    overrides = ["callbacks.progress_bar=null", *args.overrides]
    cfg = fit_config(args.output_dir, args.epochs, overrides)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    started = time.perf_counter()
    datamodule = build_datamodule(cfg)
    load_s = time.perf_counter() - started
    task = build_task(cfg)
    trainer = build_trainer(cfg)
    started = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    fit_s = time.perf_counter() - started
    sampler.stopped.set()
    report(
        load_s=load_s,
        fit_s=fit_s,
        epochs=trainer.current_epoch,
        train_examples=datamodule.split_sizes()["train"],
        loader_workers=getattr(datamodule, "num_workers", 0),
        worker_processes_seen=len(sampler.seen),
        worker_peak_rss_mb=sampler.peak_mb,
    )


if __name__ == "__main__":
    main()
