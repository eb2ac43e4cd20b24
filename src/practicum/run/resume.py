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

import os
import shutil
import socket
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
# created exclusively when a command claims an explicit hydra.run.dir: "<host> <pid>"
CLAIM = ".practicum_claim"


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
    args = [_quoted(a) for a in kept]
    args.append(path_override("ckpt_path", run_dir / LAST))
    args.append(f"trainer.max_epochs={max(2 * epochs, epochs + 10)}")
    return " ".join(["python train.py", *args])


def _quoted(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


# characters Hydra's override grammar reads as syntax in an unquoted value (a comma is a sweep)
HYDRA_SPECIAL = set(" ,=[]{}()'\"\\$:*?")


def path_override(key: str, path: Path | str) -> str:
    """`key=<path>` as one shell word that Hydra reads back as that path: quoted for Hydra when
    the path holds its syntax (a space, a comma), then for the shell."""
    text = str(path)
    if any(c in HYDRA_SPECIAL for c in text):
        quote = '"' if '"' not in text else "'"
        text = quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote
    return _quoted(f"{key}={text}")


def resume_command(run_dir: Path | str) -> str:
    """The command that resumes an unfinished run in its own directory."""
    return f"python train.py ckpt_path=last {path_override('hydra.run.dir', run_dir)}"


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
    multirun = "-m" in argv or "--multirun" in argv
    if values.get("ckpt_path") != "last":
        if run_dir is not None and not multirun:
            if str(run_dir).strip() == "":
                raise UserError(
                    "hydra.run.dir= is empty, which would write the run into the current "
                    "folder: name a directory, or leave hydra.run.dir out for a new one under logs/"
                )
            if holds_a_run(Path(str(run_dir))):
                raise UserError(
                    f"hydra.run.dir={run_dir} already holds a run, which is never overwritten: "
                    "pass a new directory, or add ckpt_path=last to resume that run"
                )
            claim(Path(str(run_dir)))
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
    claim(run_dir, resuming=True)
    given = {o.key_or_group for o in overrides.parse(argv)}
    restored = [o for o in saved_overrides(run_dir) if _key(o) not in given]
    argv = [*restored, *argv, *([f"hydra.run.dir={run_dir}"] if picked else [])]
    summary = RunSummary.read(run_dir)
    state = summary.status if summary else "stopped without a summary"
    print(f"practicum: resuming {run_dir} ({state})", file=sys.stderr, flush=True)
    return argv


def _owner(marker: Path) -> tuple[str, int] | None:
    """The host and process that claimed a run directory, from its marker."""
    try:
        host, pid = marker.read_text().split()[:2]
        return host, int(pid)
    except (OSError, ValueError):
        return None


def _alive(owner: tuple[str, int] | None) -> bool:
    """The claiming process still runs (on this host: another host's cannot be asked)."""
    if owner is None or owner[0] != socket.gethostname() or owner[1] == os.getpid():
        return False
    try:
        os.kill(owner[1], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_claimed: list[Path] = []  # the run directories this command claimed and created


def release_unused_claim() -> None:
    """A claimed directory that holds nothing but its marker (the command was refused before
    its run started) is removed: a refusal leaves nothing that looks like a run."""
    while _claimed:
        run_dir = _claimed.pop()
        marker = run_dir / CLAIM
        try:
            if [p.name for p in run_dir.iterdir()] == [CLAIM]:
                marker.unlink()
                run_dir.rmdir()
        except OSError:
            pass


def claim(run_dir: Path, resuming: bool = False) -> None:
    """Claim an explicit run directory by creating its marker exclusively: of two commands given
    the same `hydra.run.dir` at once, the second is refused in one line and the first run stays
    whole. A resume takes the marker over unless the run it names is still running here."""
    marker = run_dir / CLAIM
    try:
        if not run_dir.exists():
            run_dir.mkdir(parents=True)
            _claimed.append(run_dir)
    except OSError as exc:
        raise UserError(f"hydra.run.dir={run_dir} cannot be created ({exc.strerror})") from exc
    stamp = f"{socket.gethostname()} {os.getpid()}\n"
    if resuming:
        owner = _owner(marker)
        if _alive(owner):
            raise UserError(
                f"hydra.run.dir={run_dir} is being trained right now (process {owner[1]}): "
                "wait for it to end, or stop it, before resuming"
            )
        marker.write_text(stamp)
        return
    try:
        descriptor = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        owner = _owner(marker)
        who = f" (process {owner[1]} on {owner[0]})" if owner else ""
        raise UserError(
            f"hydra.run.dir={run_dir} was just claimed by another run{who}: each run needs a "
            "directory of its own; pass a new one"
        ) from None
    with os.fdopen(descriptor, "w") as handle:
        handle.write(stamp)


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
