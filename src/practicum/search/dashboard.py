"""`practicum-dashboard SWEEP_DIR` (also `python -m practicum.search.dashboard SWEEP_DIR`): Optuna's
dashboard (optuna-dashboard) on a search's study: its trials, their learning curves (the values
each reported per epoch), which were pruned, the parameters' importance. It reads the storage
the sweep recorded in multirun.yaml (by default `study.journal` in the sweep directory), while
the search runs or after.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from practicum.errors import UserError, report
from practicum.run.study_trial import STUDY_FILE, open_storage, storage_file
from practicum.search.sweep_study import saved_sweeper

USER_ERROR_EXIT = 2


def sweep_storage(sweep_dir: Path) -> str:
    """The storage URL of the sweep's study; one line when the folder holds none."""
    if not sweep_dir.is_dir():
        raise UserError(f"no sweep directory {sweep_dir}: pass logs/<task>/multiruns/<timestamp>")
    storage = saved_sweeper(sweep_dir).get("storage")
    path = storage_file(storage) if storage else sweep_dir / STUDY_FILE
    if storage is None and path.is_file():
        storage = f"journal:{path.absolute()}"
    if storage is None or (path is not None and not path.is_file()):
        raise UserError(
            f"{sweep_dir} has no Optuna study ({STUDY_FILE}, or the storage in its multirun.yaml): "
            "pass the directory of a search (python train.py -m search=random ...)"
        )
    return str(storage)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="practicum-dashboard",
        description="Open a search's Optuna study in optuna-dashboard.",
    )
    parser.add_argument("sweep_dir", type=Path, help="logs/<task>/multiruns/<timestamp>")
    parser.add_argument("--host", default="127.0.0.1", help="the address to serve on")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    try:
        storage = sweep_storage(args.sweep_dir.absolute())
    except UserError as exc:
        report(str(exc))
        sys.exit(USER_ERROR_EXIT)
    from optuna_dashboard import run_server

    print(
        f"Optuna dashboard of {args.sweep_dir}: http://{args.host}:{args.port}/dashboard "
        "(Ctrl-C stops it)",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it is meant to stop
        run_server(open_storage(storage), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
