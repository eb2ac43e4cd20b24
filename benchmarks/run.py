"""practicum's benchmark suite: does the template cost its user anything?

    make bench                                  # everything (about half an hour on an idle 2-core machine)
    make bench BENCH_ARGS="--quick"             # fewer repeats and shorter runs: a smoke test
    .venv/bin/python benchmarks/run.py --only fit,startup

Sections (each prints a table; all of them land in one JSON file):

  fit         `trainer.fit` of practicum's default path (build_trainer: every feature on) vs a
              bare Lightning Trainer (fit_lightning.py) and a plain PyTorch loop (fit_by_hand.py)
              on the CPU: the same digits CNN, data split, seed, 20 epochs, batch 64, Adam 3e-3
              and cosine schedule; validation every epoch. Each fit runs in a fresh process, sides
              rotating, and only the fit is timed; ratios with min, median and max over the rounds.
              Then each practicum feature alone on the bare Lightning fit (fit_features.py: best
              and last checkpoints, BackgroundCheckpointIO, epoch metrics, early stopping, lr
              monitor, progress bar, model summary, CSV log, StepLosses), as a ratio to the bare
              fit.
              Target: practicum / bare Lightning <= 1.05.
  steps       realistic steps: ResNet-18 on synthetic 3x32x32 images at batch 64 on the CPU, 10
              steps after 2 of warm-up: practicum's task + build_trainer (everything on) vs a hand
              loop with the same net, batches, seed and optimizer (steps_worker.py), fresh
              processes, sides alternating. Target: practicum / hand loop <= 1.03.
  startup     time to first result: `python train.py` (defaults, start to exit; it must meet its
              goal) over `python -c "import lightning.pytorch"`, alternating (target <= 1.6);
              `--help` (target <= 1.5 s) and `--cfg job`.
  sweep       4 equal MLP trials (an lr grid): basic launcher vs `hydra/launcher=local_parallel`
              (2 jobs). Target: parallel <= 0.65x serial.
  throughput  training samples/s of each model family: linear, MLP, CNN at batch 64 on digits;
              ResNet-18, VGG-11, Inception-V3 at batch 32 on synthetic 3x32x32 images;
              in this process: through `task.training_step` and through the bare net.
  memory      peak RSS of the default `python train.py`; RSS after epoch 10 and 100 of a
              100-epoch fit (no growth expected).
  saves       ms on the training thread per checkpoint save: Lightning's stock TorchCheckpointIO,
              AtomicCheckpointIO (durable, on the training thread) and BackgroundCheckpointIO
              (durable, written on a thread; the default) on the digits CNN's checkpoint of the
              fit section and a ResNet-18 with Adam's state, 20 saves a side, sides rotating
              (saves_worker.py). Target: background save <= stock save (median).
  classes     a split's macro F1 and its standard errors (a 200-resample bootstrap) at 10, 1,000
              and 10,000 classes and 20,000 and 40,000 examples, in this process (classes.py).
              Target: 10,000 classes <= 2x the time of 10; twice the examples <= 2.5x.
  autopilot   `autopilot=default`, the same with `autopilot.parallel=3`, `search=random` and
              `search=tpe` at the same budget (8 runs) in 19 scenarios: five on digits that miss
              their goal for different reasons, three CSV tables with explicit splits
              (breast_cancer, wine, digits), each from its plain start and from three bad starts,
              and two starts no tuning can fix
              (benchmarks/autopilot.py; BENCH_AUTOPILOT_SCENARIOS, _METHODS, _BUDGET run a part),
              over 3 seeds (--quick: 1). Targets: the goal (or an `unfixable` stop) in >= 90% of
              the cells within 8 runs, less wall time to the goal than random and TPE, no crash,
              no identical rerun.
  audit       the data audit against planted defects (benchmarks/audit.py): labels flipped at 10%
              and 25% on digits and a table (precision and recall of label_issues.csv, the
              estimated noise rate), 5% of train copied into test (tables: 1e-4 relative noise;
              images: JPEG at quality 90), the learning curve's extrapolation from 200 digits to
              the full split, and the audit's share of the default run's time (target <= 1.15).
  checks      what the checks that see the code cost (benchmarks/checks_bench.py): the seconds
              of `debug=checks` on the default model (target <= 10 s), and the default run with
              the code facts on and off, alternating (target: run / (run - facts) <= 1.02).
  pruning     random search with and without pruning (ASHA, median) on the digits CNN, the wine
              MLP and the GRU on digit rows (benchmarks/pruning.py): 16 trials of 30 epochs, 2 at
              a time, early stopping off, 3 search seeds (--quick: 15 epochs, one seed). Best val
              objective, trial-epochs, wall time, idle share of the slots. Targets: the best
              within noise of no pruning, ASHA <= 40% of the trial-epochs, idle <= 10%.
  images      `data=image_folder` on generated PNGs (standard augmentation): images/s of
              practicum's training loader vs torchvision ImageFolder + DataLoader with the same
              transforms, batch and workers, epochs alternating (target >= 0.95); the training step
              with real loading vs the same batches preloaded, with 0 and the default workers.
  scaling     fit time and peak RSS at 1x, 4x and 16x the training set, in-memory (npz) and image
              files (image_folder), one fresh process each: time per example no worse than linear;
              file-backed peak RSS flat.
  gpu         ResNet-18 images/s: practicum's task + Trainer (trainer=gpu: bf16 where supported,
              channels-last, pinned memory) vs a hand loop with the same settings (target >= 0.95).
              Without CUDA it runs its CPU path (fp32, a few steps): a smoke test, no target.

Options: --quick, --only SECTION[,SECTION], --repeats N (every section), --results-dir DIR, and
--threads N|torch|auto: torch/OpenMP threads of every process. `torch` leaves torch's default (one
per core); `auto` (the default) does that on an idle machine and uses 1 thread when the machine is
already busy: on a shared 2-core machine, two torch threads that must meet at every parallel region
wait on other processes' time slices and a training step gets 10-40x slower, so the numbers would
measure the neighbours. The tables say which setting ran; compare results measured alike.

Results: benchmarks/results/<timestamp>.json and benchmarks/results/latest.json, with the machine,
the load average before and after each section, and every raw measurement.

Reading the numbers: the machine is shared, so each figure is a median over repeats run in
alternation, and every table says the load average and thread setting it ran under. The workers
accept `--profile FILE` (pyinstrument) to see where a fit's time goes:

    .venv/bin/python benchmarks/fit_practicum.py /tmp/fit 20 --profile /tmp/fit.txt
    .venv/bin/python benchmarks/fit_lightning.py /tmp/fit 20 --features checkpoint --profile /tmp/ck.txt
    .venv/bin/python benchmarks/steps_worker.py practicum /tmp/steps 2 10 --profile /tmp/steps.txt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console

import audit
import autopilot
import checks_bench
import classes
import fit
import gpu
import images
import memory
import pruning
import saves
import scaling
import startup
import steps
import sweep
import throughput
from common import BENCH_DIR, ROOT, BenchError, Settings, load_average

SECTIONS = {
    "fit": fit,
    "steps": steps,
    "startup": startup,
    "sweep": sweep,
    "throughput": throughput,
    "memory": memory,
    "saves": saves,
    "classes": classes,
    "autopilot": autopilot,
    "audit": audit,
    "pruning": pruning,
    "checks": checks_bench,
    "images": images,
    "scaling": scaling,
    "gpu": gpu,
}
# a 1-minute load average from which the machine counts as busy (see --threads)
BUSY_LOAD = 0.5
# a pipe gets 80 columns by default; the tables need more
console = Console(width=None if sys.stdout.isatty() else 120)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter runs")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections: {', '.join(SECTIONS)}",
    )
    parser.add_argument("--repeats", type=int, help="repeats of every section (overrides defaults)")
    parser.add_argument(
        "--threads", default="auto", help="N, torch (its default) or auto (1 on a busy machine)"
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    args.sections = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in args.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)}: choose from {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads, threads_note = choose_threads(args.threads)
    if threads:  # before anything imports torch; the child processes inherit it
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)
    console.print(f"Threads per process: {threads_note}; see --help for --threads")
    settings = Settings(quick=args.quick, repeats=args.repeats)
    started = time.perf_counter()
    report: dict[str, Any] = {"machine": machine(), "settings": vars(settings), "sections": {}}
    report["settings"].update(threads=threads, threads_note=threads_note)
    failed = []
    for name in args.sections:
        section = SECTIONS[name]
        console.rule(f"[bold]{name}")
        load_before = load_average()
        section_started = time.perf_counter()
        try:
            result = section.run(settings, report["sections"], log=progress)
        except Exception as exc:
            if not isinstance(exc, BenchError):
                console.print_exception()
            console.print(f"[red]{name} failed:[/red] {exc}")
            failed.append(name)
            report["sections"][name] = {"error": str(exc)}
            continue
        result["seconds"] = round(time.perf_counter() - section_started, 1)
        result["load_before"], result["load_after"] = load_before, load_average()
        report["sections"][name] = result
        tables = section.table(result)  # one table, or a list of them
        tables = tables if isinstance(tables, list) else [tables]
        load = (
            f"load avg before {fmt_load(load_before)}, after {fmt_load(result['load_after'])}; "
            f"threads: {threads_note}"
        )
        last = tables[-1]
        last.caption = f"{last.caption}\n{load}" if last.caption else load
        for table in tables:
            console.print(table)

    report["total_seconds"] = round(time.perf_counter() - started, 1)
    path = write_results(report, args.results_dir)
    console.print(f"Results: {path} (total {report['total_seconds']:.0f} s)", soft_wrap=True)
    if failed:
        console.print(f"[red]Failed sections: {', '.join(failed)}")
    return 1 if failed else 0


def choose_threads(requested: str) -> tuple[int | None, str]:
    """The OMP/torch thread count for every process (None: torch's default), and why."""
    if requested == "torch":
        return None, "torch's default"
    if requested != "auto":
        return int(requested), f"{int(requested)} (--threads)"
    load = os.getloadavg()[0]
    if load >= BUSY_LOAD:
        return 1, f"1 (auto: busy machine, load {load:.2f} at start)"
    return None, f"torch's default (auto: idle machine, load {load:.2f} at start)"


def progress(message: str) -> None:
    console.print(f"[dim]{message}[/dim]", highlight=False)


def fmt_load(load: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in load)


def machine() -> dict[str, Any]:
    """What the numbers were measured on and with."""
    versions = {}
    for package in ("torch", "lightning", "hydra-core", "torchmetrics"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_at_start": load_average(),
        "git": git_revision(),
        "versions": versions,
    }


def git_revision() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return f"{head}{' (uncommitted changes)' if dirty else ''}" if head else None


def write_results(report: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, default=str) + "\n"
    path = results_dir / f"{datetime.now():%Y-%m-%d_%H-%M-%S}.json"
    path.write_text(text)
    (results_dir / "latest.json").write_text(text)
    return path


if __name__ == "__main__":
    sys.exit(main())
