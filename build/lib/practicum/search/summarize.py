"""`practicum-summarize SWEEP_DIR` (also `python -m practicum.search.summarize SWEEP_DIR`): write
summary.csv, summary.md and search.png of a sweep again from its trials' run directories — after
the process that launched the sweep died before writing them, or after a trial was rerun.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from practicum.errors import UserError, report
from practicum.search.sweep import TRIAL_STATUSES, collect_trials, fmt
from practicum.search.sweep_summary import summarize_sweep

USER_ERROR_EXIT = 2


def summarize(sweep_dir: Path) -> list[str]:
    """Rebuild the sweep's summary files; return the lines that say where they are and the best."""
    if not sweep_dir.is_dir():
        raise UserError(f"no sweep directory {sweep_dir}: pass logs/<task>/multiruns/<timestamp>")
    if not collect_trials(sweep_dir):
        raise UserError(
            f"{sweep_dir} holds no trials (no <job>/.hydra/overrides.yaml below it): "
            "pass the directory of a sweep, logs/<task>/multiruns/<timestamp>"
        )
    result = summarize_sweep(sweep_dir)
    counts = result["counts"]
    tally = ", ".join(f"{counts[s]} {s}" for s in TRIAL_STATUSES if counts[s] or s == "completed")
    lines = [
        f"Sweep summary: {sweep_dir / 'summary.md'}",
        f"Table: {sweep_dir / 'summary.csv'}",
        f"Plot: {sweep_dir / 'search.png'}",
        f"{counts['total']} trials: {tally}",
    ]
    best = result["best"]
    if best is None:
        return [*lines, "Best trial: none (no trial completed with a finite objective)"]
    return [
        *lines,
        f"Best trial: job {best['job']}, objective {fmt(best['objective'])}, "
        f"run dir {best['run_dir']}: {best['command']}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="practicum-summarize",
        description="Write a sweep's summary.csv, summary.md and search.png again from its trials.",
    )
    parser.add_argument("sweep_dir", type=Path, help="logs/<task>/multiruns/<timestamp>")
    args = parser.parse_args(argv)
    try:
        lines = summarize(args.sweep_dir.absolute())
    except UserError as exc:
        report(str(exc))
        sys.exit(USER_ERROR_EXIT)
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
