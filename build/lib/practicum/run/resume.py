"""Which run directory a command may write, decided from the command line before Hydra runs.

- `ckpt_path=last` continues an unfinished run in its own directory: the one `hydra.run.dir=`
  names, else the newest unfinished run under logs/<task_name>/runs/. The run's own overrides
  (.hydra/overrides.yaml) are put back first, so `python train.py ckpt_path=last
  hydra.run.dir=<run>` is the whole resume command; overrides given with it win.
- A finished run (summary.json completed or diverged) is never rewritten: resuming one is refused
  with the command that trains on from its checkpoint into a new run directory.
- Any other run into a directory that already holds a run is refused.

Nothing here imports torch: these checks answer at once.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml

from practicum.config import command_line as overrides
from practicum.errors import UserError
from practicum.methodology import run_summary as summary
from practicum.methodology.run_summary import RunSummary

LAST = Path("checkpoints") / "last.ckpt"
# what marks a folder as a run's: Hydra's record, a summary, checkpoints or metrics
RUN_MARKERS = (".hydra", summary.FILE_NAME, "checkpoints", "metrics.csv")


def runs_folder(argv: list[str], cwd: Path | None = None) -> Path:
    values = overrides.values(argv)
    log_dir = Path(values.get("paths.log_dir", (cwd or Path.cwd()) / "logs"))
    return log_dir / str(values.get("task_name", "train")) / "runs"


def holds_a_run(folder: Path) -> bool:
    return folder.is_dir() and any((folder / marker).exists() for marker in RUN_MARKERS)


def saved_overrides(run_dir: Path) -> list[str]:
    """The overrides the run was started with, without the ones that pick the checkpoint."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    try:
        saved = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not readable YAML ({exc.__class__.__name__})") from exc
    return [str(o) for o in saved if not str(o).lstrip("+~").startswith("ckpt_path=")]


def newest_unfinished(runs: Path) -> tuple[Path, int]:
    """The newest run with a last.ckpt and no finished summary; and how many finished ones were
    passed over."""
    candidates = sorted(runs.glob(f"*/{LAST}"), key=lambda p: p.stat().st_mtime, reverse=True)
    finished = 0
    for last in candidates:
        run_dir = last.parents[1]
        summary = RunSummary.read(run_dir)
        if summary is not None and summary.finished:
            finished += 1
            continue
        return run_dir, finished
    passed = f" ({finished} finished runs there are never resumed)" if finished else ""
    raise UserError(
        f"ckpt_path=last but no unfinished run under {runs} has {LAST}{passed}: pass "
        "hydra.run.dir=<the run directory to resume>, or ckpt_path=<a .ckpt file> to train on "
        "from a checkpoint into a new run directory"
    )


def continue_command(run_dir: Path, summary: RunSummary) -> str:
    """The command that trains a finished run on, from its last checkpoint, into a new directory."""
    epochs = summary.epochs_trained or 0
    kept = [o for o in saved_overrides(run_dir) if _key(o) != "trainer.max_epochs"]
    args = [*kept, f"ckpt_path={run_dir / LAST}"]
    args.append(f"trainer.max_epochs={max(2 * epochs, epochs + 10)}")
    return " ".join(["python train.py", *(_quoted(a) for a in args)])


def _quoted(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def refuse_finished(run_dir: Path) -> None:
    summary = RunSummary.read(run_dir)
    if summary is None or not summary.finished:
        return
    reached = (
        ""
        if summary.objective is None
        else f", {summary.goal.get('metric')} {summary.objective:.4g}"
    )
    raise UserError(
        f"{run_dir} is a finished run ({summary.status} after {summary.epochs_trained} epochs"
        f"{reached}) and is never rewritten: to train it on into a new run directory, run "
        f"{continue_command(run_dir, summary)}"
    )


def plan(argv: list[str], cwd: Path | None = None) -> list[str]:
    """The command line Hydra gets: for `ckpt_path=last`, the run to resume and its overrides;
    a run into a directory that holds one is refused. One UserError line for every refusal."""
    values = overrides.values(argv)
    run_dir = values.get("hydra.run.dir")
    if values.get("ckpt_path") != "last":
        if run_dir is not None and holds_a_run(Path(str(run_dir))):
            raise UserError(
                f"hydra.run.dir={run_dir} already holds a run, which is never overwritten: pass a "
                "new directory, or add ckpt_path=last to resume that run"
            )
        return argv
    picked = run_dir is None
    if picked:
        run_dir, _ = newest_unfinished(runs_folder(argv, cwd))
    run_dir = Path(str(run_dir))
    if not (run_dir / LAST).is_file():
        raise UserError(
            f"ckpt_path=last but {run_dir / LAST} does not exist: pass hydra.run.dir=<the run "
            "directory to resume> or ckpt_path=<a .ckpt file>"
        )
    refuse_finished(run_dir)
    given = {o.key_or_group for o in overrides.parse(argv)}
    restored = [o for o in saved_overrides(run_dir) if _key(o) not in given]
    argv = [*restored, *argv, *([f"hydra.run.dir={run_dir}"] if picked else [])]
    summary = RunSummary.read(run_dir)
    state = summary.status if summary else "stopped without a summary"
    print(f"practicum: resuming {run_dir} ({state})", file=sys.stderr, flush=True)
    return argv


def _key(override: str) -> str:
    return overrides.parse([override])[0].key_or_group


def keep_config_record(run_dir: Path) -> None:
    """Hydra rewrites .hydra/*.yaml of a resumed run: the files as they were go to
    .hydra/before_resume_<n>/ first."""
    saved = run_dir / ".hydra"
    if saved.is_dir() and any(saved.glob("*.yaml")):
        backup = saved / f"before_resume_{len(list(saved.glob('before_resume_*'))) + 1}"
        backup.mkdir()
        for path in saved.glob("*.yaml"):
            shutil.copy2(path, backup / path.name)
