"""Every shell command in the docs runs, so the docs cannot drift from the code.

The docs are README.md, docs/*.md and benchmarks/README.md. Their commands are the lines of their
```bash blocks, the `$ ` lines of their output blocks (whose printed lines must match) and the
`python ...` / `make ...` spans of their prose. Each runs from the project root as written, with
these changes and no others:
- sizes: train commands get one epoch, no linear baseline and no progress bar (SMALL); searches
  two trials, the grid-vs-random study one seed of four one-epoch trials; file datasets small
  images; the benchmarks their quick settings and one repeat (the autopilot section two of its
  scenarios, two methods, three runs);
- places: runs write under a temporary `paths.log_dir`; placeholders (`/path/to/...`, `/data/...`,
  `<timestamp>`, `...`, `/tmp/...`, the study database) become files this test writes in the real
  formats, or temporary paths;
- projects: `copier copy` generates from this checkout into a temporary folder with the answers
  given up front; the rename script runs in a fork copied to a temporary folder, never here;
- hardware: a command that needs a GPU or a SLURM cluster this machine lacks must stop with one
  clear `practicum: error:` line instead (missing_hardware).
The commands in NOT_RUN are the only ones not run, each with its reason.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from functools import cached_property
from pathlib import Path

import pytest

from conftest import ROOT, path_without_slurm, wait_for

DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "benchmarks" / "README.md",
]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`((?:python|make|source|copier|\.venv/bin/[\w-]+) [^`]+)`")
COMMENT = re.compile(r"\s+#\s.*$")
CPU_TORCH = (
    "python3 -m venv .venv && .venv/bin/pip install torch torchvision "
    "--index-url https://download.pytorch.org/whl/cpu"
)
# the commands shown in the docs that this test does not run, and why
NOT_RUN = {
    "make test": "it runs the suite this test is part of",
    "make test-all": "it runs the suite this test is part of; CI runs it",
    "make test-slow": "it runs the suite this test is part of; CI runs it",
    "make coverage": "it runs the whole suite twice under coverage",
    "make test-oldest": "it installs a second venv and runs the fast layer in it; CI runs it",
    "make format": "it rewrites the files of this checkout",
    "make clean": "it deletes this checkout's logs and caches",
    "make test-slurm": "it installs and starts a SLURM cluster; CI runs it after the suite",
    "tmux new -s sweep 'python train.py -m search=random hydra/launcher=slurm'": "it opens a "
    "terminal session that outlives the test; the command inside it runs by itself above",
    'sbatch --time=2-00:00:00 --cpus-per-task=1 --mem=4G --wrap "python train.py -m search=random '
    'hydra/launcher=slurm"': "it submits to a SLURM cluster; tests/test_slurm.py runs the "
    "launcher on a real one",
    "practicum-dashboard logs/train/multiruns/<timestamp>": "it serves until stopped; "
    "tests/test_pruning.py starts it on a loopback port, fetches the study and its trials, and "
    "stops it",
    CPU_TORCH: "it downloads torch; CI installs this way on every push, and "
    "test_make_keeps_an_existing_venv checks the Makefile's part",
}

SMALL = {
    "trainer.max_epochs": "1",
    "diagnosis.baseline_model": "null",
    "callbacks.progress_bar": "null",
}
SMALL_SEARCH = {"search.n_trials": "2"}
SMALL_STUDY = {"study.n_trials": "4", "study.study_seeds": "[0]", "study.max_epochs": "1"}
SMALL_FILE_DATA = {"data.image_size": "48", "data.batch_size": "4"}


# the autopilot section's part the docs test runs (benchmarks/autopilot.py reads these)
AUTOPILOT_PART = {
    "BENCH_AUTOPILOT_SCENARIOS": "wine_lr_too_low,wine_shifted_test",
    "BENCH_AUTOPILOT_METHODS": "autopilot,random",
    "BENCH_AUTOPILOT_BUDGET": "3",
}


def doc_commands(doc: Path) -> dict[str, list[str] | None]:
    """{command: the lines it prints, where the doc shows them (else None)}, in the doc's order."""
    text = doc.read_text()
    commands: dict[str, list[str] | None] = {}
    for language, body in FENCE.findall(text):
        lines = body.splitlines()
        for i, line in enumerate(lines):
            if language == "bash" and line.strip() and not line.lstrip().startswith("#"):
                commands.setdefault(COMMENT.sub("", line).strip(), None)
            elif language == "" and line.startswith("$ "):
                printed = []
                for following in lines[i + 1 :]:
                    if following.startswith("$ "):
                        break
                    printed.append(following)
                commands[line[2:].strip()] = printed
    for command in INLINE.findall(FENCE.sub("", text)):
        commands.setdefault(command, None)
    return commands


def all_commands() -> dict[str, list[str] | None]:
    """Every doc's commands, each once; printed lines shown in any doc count."""
    commands: dict[str, list[str] | None] = {}
    for doc in DOCS:
        for command, printed in doc_commands(doc).items():
            if commands.get(command) is None:
                commands[command] = printed
    return commands


COMMANDS = all_commands()


def test_every_doc_has_commands_and_not_run_lists_only_shown_ones():
    assert all(doc.is_file() for doc in DOCS) and len(DOCS) >= 6, DOCS
    empty = [doc.name for doc in DOCS if not doc_commands(doc)]
    assert not empty, f"no commands found in {empty}"
    assert set(NOT_RUN) <= set(COMMANDS), set(NOT_RUN) - set(COMMANDS)
    assert {"make train", "python train.py", "python train.py --help"} <= set(COMMANDS)
    assert len(COMMANDS) > 50, len(COMMANDS)


class Workspace:
    """The files the docs' placeholders stand for, written on first use."""

    def __init__(self, root: Path):
        self.root = root
        self.logs = root / "logs"

    def train(self, log_dir: Path, *overrides: str) -> Path:
        result = _run(_python_command("python train.py " + " ".join(overrides), log_dir))
        assert result.returncode == 0, result.stderr[-3000:]
        (run_dir,) = log_dir.glob("train/runs/*")
        return run_dir

    def interrupted_run(self, log_dir: Path) -> Path:
        """A run stopped with Ctrl-C after its first epochs: what `ckpt_path=last` resumes."""
        small = [f"{key}={value}" for key, value in SMALL.items() if key != "trainer.max_epochs"]
        command = [sys.executable, "train.py", "trainer.max_epochs=30", *small]
        process = subprocess.Popen(
            [*command, f"paths.log_dir={log_dir}"],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(
            lambda: (
                process.poll() is not None
                or bool(list(log_dir.glob("train/runs/*/checkpoints/last.ckpt")))
            ),
            what="the first last.ckpt",
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) != 0, "the run ended before it could be interrupted"
        (run_dir,) = log_dir.glob("train/runs/*")
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
        return run_dir

    @cached_property
    def my_conf(self) -> Path:
        """A user's config folder for `hydra.searchpath`, and the package its tiny_net builds."""
        folder = self.root / "my_conf"
        (folder / "model").mkdir(parents=True)
        (folder / "model" / "narrow_mlp.yaml").write_text(
            "defaults:\n  - mlp\n  - _self_\nnet:\n  hidden_units: 16\n"
        )
        (folder / "model" / "tiny_net.yaml").write_text(
            "defaults:\n  - linear\n  - _self_\nnet:\n  _target_: my_project.TinyNet\n"
        )
        package = self.root / "code" / "my_project"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(
            "import math\nfrom torch import nn\n\n\nclass TinyNet(nn.Sequential):\n"
            "    def __init__(self, in_shape, num_classes):\n"
            "        super().__init__(nn.Flatten(), nn.Linear(math.prod(in_shape), num_classes))\n"
        )
        return folder

    @cached_property
    def digits_run(self) -> Path:
        """The run `<timestamp>` and `ckpt_path=last` stand for: the newest in the workspace's logs."""
        return self.train(self.logs)

    @cached_property
    def sweep(self) -> Path:
        """The sweep `logs/train/multiruns/<timestamp>` stands for: two one-epoch trials."""
        log_dir = self.root / "sweep_logs"
        command = "python train.py -m data=wine model=mlp optimizer.lr=1e-3,3e-3"
        result = _run(_python_command(command, log_dir))
        assert result.returncode == 0, result.stderr[-3000:]
        (sweep_dir,) = log_dir.glob("train/multiruns/*")
        return sweep_dir

    @cached_property
    def image_folder(self) -> Path:
        from test_image_data import write_image_folder

        return write_image_folder(self.root / "image_folder", per_class=8)

    @cached_property
    def image_run(self) -> Path:
        return self.train(
            self.root / "image_logs",
            "data=image_folder",
            f"data.root={self.image_folder}",
            "data.image_size=16",
        )

    @cached_property
    def new_images(self) -> Path:
        from test_image_data import write_image_folder

        return write_image_folder(self.root / "new_images", per_class=2)

    @cached_property
    def table(self) -> Path:
        from sklearn.datasets import load_wine

        wine = load_wine()
        rows = [",".join(f"f{i}" for i in range(wine.data.shape[1])) + ",label"]
        rows += [
            ",".join(f"{v:.4f}" for v in x) + f",{wine.target_names[y]}"
            for x, y in zip(wine.data, wine.target, strict=True)
        ]
        path = self.root / "table.csv"
        path.write_text("\n".join(rows) + "\n")
        return path

    @cached_property
    def new_rows(self) -> Path:
        from sklearn.datasets import load_digits

        digits = load_digits()
        rows = [",".join(f"pixel_{i}" for i in range(64)) + ",label"]
        rows += [
            ",".join(str(int(v)) for v in x) + f",{y}"
            for x, y in zip(digits.data[:20], digits.target[:20], strict=True)
        ]
        path = self.root / "new_rows.csv"
        path.write_text("\n".join(rows) + "\n")
        return path

    @cached_property
    def arrays(self) -> Path:
        import numpy as np
        from sklearn.datasets import load_digits

        digits = load_digits()
        path = self.root / "arrays.npz"
        np.savez(path, x=digits.images[:, None], y=digits.target)
        return path

    @cached_property
    def sequences(self) -> Path:
        from test_sequences import _write_sequences_csv

        return _write_sequences_csv(self.root / "my_sequences.csv")

    @cached_property
    def coco(self) -> tuple[Path, Path]:
        from test_detection import write_coco

        return write_coco(self.root / "coco", count=12, size=64)

    @cached_property
    def voc(self) -> Path:
        from test_segmentation import write_voc

        return write_voc(self.root / "VOC2012")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("readme"))


def fill(command: str, ws: Workspace) -> str:
    """The command with its placeholders replaced by real files of the workspace."""
    if "input=/path/to/images/" in command:
        command = command.replace(
            "ckpt_path=...", f"ckpt_path={ws.image_run}/checkpoints/last.ckpt"
        )
        command = command.replace("/path/to/images/", f"{ws.new_images}/")
    replacements = {
        "logs/train/runs/<timestamp>": lambda: str(ws.digits_run),
        "/path/to/table.csv": lambda: str(ws.table),
        "/path/to/arrays.npz": lambda: str(ws.arrays),
        "data.root=/path/to/images": lambda: f"data.root={ws.image_folder}",
        "sqlite:///logs/": lambda: f"sqlite:///{ws.root}/",
        "journal:logs/": lambda: f"journal:{ws.root}/",
        "logs/train/multiruns/<timestamp>": lambda: str(ws.sweep),
        "/tmp/fit": lambda: str(ws.root / "fit"),
        "input=new_rows.csv": lambda: f"input={ws.new_rows}",
        "data.path=my_sequences.csv": lambda: f"data.path={ws.sequences}",
        "/data/images": lambda: str(ws.coco[0]),
        "/data/instances.json": lambda: str(ws.coco[1]),
        "/data/VOCdevkit/VOC2012": lambda: str(ws.voc),
        "/path/to/my_conf": lambda: str(ws.my_conf),
    }
    for placeholder, value in replacements.items():
        if placeholder in command:
            command = command.replace(placeholder, value())
    leftover = re.search(r"<[a-z_]+>|\.\.\.|/path/to|/data/", command)
    assert leftover is None, f"no file for the placeholder {leftover.group()!r} in: {command}"
    return command


def _set(tokens: list[str], values: dict[str, str]) -> list[str]:
    """Override keys in place where the command sets them, else append them."""
    tokens = list(tokens)
    for key, value in values.items():
        at = [i for i, t in enumerate(tokens) if t.split("=", 1)[0] == key]
        if at:
            tokens[at[0]] = f"{key}={value}"
        else:
            tokens.append(f"{key}={value}")
    return tokens


def _small_overrides(tokens: list[str], log_dir: Path) -> list[str]:
    if "--help" in tokens or "--cfg" in tokens:
        return tokens
    values = {**SMALL, "paths.log_dir": str(log_dir)}
    if any(t.startswith("search=") for t in tokens):
        values |= SMALL_SEARCH
    if "experiment=grid_vs_random" in tokens:
        values |= SMALL_STUDY
    if any(t in ("data=coco", "data=voc_segmentation") for t in tokens):
        values |= SMALL_FILE_DATA
    if tokens[1] in ("eval.py", "predict.py") or "ckpt_path=last" in tokens:
        # a resumed run takes its settings from its own .hydra/overrides.yaml
        values = {"paths.log_dir": str(log_dir)}
    elif tokens[1] != "train.py":
        return tokens
    return _set(tokens, values)


def _python_command(command: str, log_dir: Path) -> str:
    tokens = shlex.split(command)
    return shlex.join(_small_overrides(tokens, log_dir))


def _make_command(command: str, log_dir: Path) -> str:
    tokens = shlex.split(command)
    if tokens[1] == "train":
        given = [t.split("=", 1)[1] for t in tokens if t.startswith("ARGS=")]
        args = _small_overrides(["python", "train.py", *shlex.split(" ".join(given))], log_dir)[2:]
        return f"make train ARGS={shlex.quote(' '.join(args))}"
    if tokens[1] == "bench":
        return f"make bench BENCH_ARGS='--quick --only startup --results-dir {log_dir}'"
    return command


def _run(
    command: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: int = 1200
) -> subprocess.CompletedProcess:
    if "rename_project" in command:
        assert cwd != ROOT, "the rename rewrites the project it runs in"
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# `python` in the docs is the project's interpreter (after `source .venv/bin/activate`)
# SLURM's commands hidden: on a SLURM node too, the docs' cluster commands stop with one line
ENV = {
    **os.environ,
    "PATH": path_without_slurm(f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"),
    "PYTHONWARNINGS": "ignore::DeprecationWarning",
    "COLUMNS": "120",
    "WANDB_MODE": "offline",
}


COPIER_ANSWERS = (
    "--defaults --data 'project_name=Leaf Classifier' --data package_name=leafnet "
    "--data 'author_name=Ada Lovelace'"
)
# git needs an identity for the commit copier makes of a checkout's uncommitted changes
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "readme test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "readme test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def missing_hardware(command: str) -> str | None:
    """What this machine lacks to run the command for real, if anything."""
    needs_gpu = "trainer=gpu" in command or re.search(r"trainer=ddp(\s|$)", command)
    if needs_gpu:
        import torch

        if not torch.cuda.is_available():
            return "no CUDA GPU is visible"
    if "hydra/launcher=slurm" in command:  # SLURM is hidden here (tests/test_slurm.py runs them)
        return "needs a SLURM cluster"
    return None


RUN = [c for c in COMMANDS if c not in NOT_RUN]


@pytest.mark.slow
@pytest.mark.parametrize("command", RUN)
def test_doc_command_runs(command: str, workspace: Workspace, tmp_path: Path):
    resumes = "ckpt_path=last" in command  # each resumes a run of its own
    log_dir = (
        workspace.logs
        if ("<timestamp>" in command or "ckpt_path=" in command) and not resumes
        else tmp_path / "logs"
    )
    runnable, cwd, env = prepare(command, workspace, log_dir, tmp_path)
    if command == "make tensorboard":
        _check_tensorboard(runnable)
        return
    result = _run(runnable, cwd=cwd, env=env)
    output = result.stdout + result.stderr
    lacking = missing_hardware(command)
    if lacking:
        errors = [
            line for line in result.stderr.splitlines() if line.startswith("practicum: error:")
        ]
        assert result.returncode == 2 and len(errors) == 1, output[-3000:]
        assert "Traceback" not in result.stderr
        return
    printed = COMMANDS[command]
    if printed is not None:
        printed = [fill(line, workspace) if "/path/to/" in line else line for line in printed]
        lines = {line.strip() for line in output.splitlines()}
        missing = [line for line in printed if line.strip() and line.strip() not in lines]
        assert not missing, (
            f"the docs show lines this command did not print: {missing}\n{output[-3000:]}"
        )
        return
    assert result.returncode == 0, f"{runnable}\n{output[-4000:]}"
    assert "Traceback" not in output, output[-4000:]
    _check_files(command, runnable, log_dir, tmp_path, output)


def prepare(
    command: str, ws: Workspace, log_dir: Path, tmp_path: Path
) -> tuple[str, Path, dict[str, str]]:
    """The command as it runs here, the folder it runs in, and its environment."""
    if command.startswith("copier copy"):
        # a new project from this checkout into the test's folder, the answers given up front
        runnable = command.replace("<path or git URL of practicum>", shlex.quote(str(ROOT)))
        runnable = runnable.replace(" my-project", f" {tmp_path / 'my-project'} {COPIER_ANSWERS}")
        return runnable, tmp_path, {**ENV, **GIT_IDENTITY}
    if "rename_project.py" in command:
        # it rewrites the project it sits in: a fork of it, never this checkout
        return command, _fork(tmp_path), ENV
    if "pre-commit install" in command:
        return command, _git_scratch(tmp_path), ENV
    if command.startswith("PRACTICUM_TRUST="):
        # the variable and the package it names, then the command as any other
        variable, rest = command.split(" ", 1)
        runnable, cwd, env = prepare(rest, ws, log_dir, tmp_path)
        code = ws.my_conf.parent / "code"
        return f"{variable} PYTHONPATH={shlex.quote(str(code))} {runnable}", cwd, env
    if "ckpt_path=last" in command:
        run_dir = ws.interrupted_run(log_dir)
        command = command.replace("logs/train/runs/<timestamp>", str(run_dir))
    runnable = fill(command, ws)
    if runnable.startswith("python "):
        runnable = _python_command(runnable, log_dir)
    elif runnable.startswith("make "):
        runnable = _make_command(runnable, log_dir)
    elif runnable.startswith("source "):
        runnable += " && python -c 'import sys; print(sys.prefix)'"
    elif runnable.startswith(".venv/bin/python benchmarks/run.py"):
        runnable += f" --quick --repeats 1 --results-dir {shlex.quote(str(log_dir))}"
        if "--only autopilot" in runnable:  # two of its scenarios, two methods, 3 runs each
            return runnable, ROOT, {**ENV, **AUTOPILOT_PART}
    return runnable, ROOT, ENV


def _fork(tmp_path: Path) -> Path:
    """The project as a fresh clone has it: no git metadata, environment, runs or caches."""
    fork = tmp_path / "fork"
    ignored = (
        "*.git",
        ".venv*",
        "logs",
        "__pycache__",
        "*_cache",
        "*.egg-info",
        "results",
        "wandb",
        "build",
        "coverage",
    )
    # a clone keeps src/practicum/conf a link to conf/
    shutil.copytree(ROOT, fork, ignore=shutil.ignore_patterns(*ignored), symlinks=True)
    return fork


def _check_files(command: str, runnable: str, log_dir: Path, tmp_path: Path, output: str) -> None:
    """A train command that ran leaves what it promises: a finished summary, a sweep summary."""
    tokens = command.split()
    if tokens[0].startswith("PRACTICUM_TRUST="):
        tokens = tokens[1:]
    if tokens[:2] == ["python", "train.py"] and not {"--help", "--cfg"} & set(tokens):
        if "-m" in tokens:
            assert list(log_dir.glob("train/multiruns/*/summary.md")), output[-3000:]
        elif "experiment=grid_vs_random" in tokens:
            assert list(log_dir.glob("grid_vs_random/runs/*/grid_vs_random.md")), output[-3000:]
        elif "debug=checks" in tokens:
            assert list(log_dir.glob("*/runs/*/checks.json")), output[-3000:]
        elif "autopilot=default" in tokens:
            assert list(log_dir.glob("*/autopilot/*/autopilot.json")), output[-3000:]
        elif "tune.apply=false" in tokens:
            assert list(log_dir.glob("*/runs/*/lr_range.png")), output[-3000:]
        elif "tune=data_size" in tokens:
            assert list(log_dir.glob("*/runs/*/data_curve.json")), output[-3000:]
        else:
            summaries = [json.loads(p.read_text()) for p in log_dir.glob("*/runs/*/summary.json")]
            assert summaries and all(s["status"] == "completed" for s in summaries), output[-3000:]
    if command.startswith(".venv/bin/python benchmarks/run.py"):
        assert (log_dir / "latest.json").is_file(), output[-3000:]
    if "--profile" in tokens:
        ran = shlex.split(runnable)
        profile = Path(ran[ran.index("--profile") + 1])
        assert profile.is_file() and profile.stat().st_size > 0, output[-3000:]
    if command.startswith("source "):
        assert Path(output.strip().splitlines()[-1]).name == ".venv", output
    if command.startswith("copier copy"):
        assert (tmp_path / "my-project" / "src" / "leafnet" / "cli" / "entry.py").is_file(), output
    if "rename_project.py" in command:
        assert (tmp_path / "fork" / "src" / "leafnet" / "cli" / "entry.py").is_file(), output
        assert not (tmp_path / "fork" / "src" / "practicum").exists()
    if "pre-commit install" in command:
        assert (tmp_path / "scratch" / ".git" / "hooks" / "pre-commit").is_file()


def _git_scratch(tmp_path: Path) -> Path:
    """A git repository with the project's pre-commit config and .venv, for `pre-commit install`."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=scratch, check=True)
    shutil.copy(ROOT / ".pre-commit-config.yaml", scratch)
    (scratch / ".venv").symlink_to(ROOT / ".venv")
    return scratch


def _check_tensorboard(command: str) -> None:
    """`make tensorboard` serves the logs folder: wait for its address, then stop it."""
    server = subprocess.Popen(
        ["bash", "-c", command],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                break
            seen.append(line)
            if "http://" in line:
                break
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert any("http://" in line for line in seen), "".join(seen)[-3000:]


def test_the_config_files_shown_are_the_shipped_ones():
    """A YAML block with a `_target_` shows the config file named last before it; they must match."""
    import yaml

    shown = 0
    for doc in DOCS:
        text = doc.read_text()
        for block in FENCE.finditer(text):
            if block.group(1) != "yaml":
                continue
            config = yaml.safe_load(block.group(2))
            if not (isinstance(config, dict) and "_target_" in config):
                continue
            named = re.findall(r"`(conf/[\w/]+\.yaml)`", text[: block.start()])
            assert named, f"{doc.name}: name the file a config block shows before it"
            shipped = yaml.safe_load((ROOT / named[-1]).read_text())
            assert config == shipped, f"{doc.name} shows {named[-1]} differently from the file"
            shown += 1
    assert shown >= 2


def _code_lines(code: str) -> list[str]:
    """The statements of a Python excerpt, stripped of indentation and trailing comments."""
    lines = (re.sub(r"\s+#\s.*$", "", line).strip() for line in code.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_the_code_shown_is_the_shipped_code():
    """A Python block whose paragraph names a `src/...py` file shows lines of that file; a line
    with `...` stands for what the excerpt leaves out."""
    shown = 0
    for doc in DOCS:
        text = doc.read_text()
        previous_end = 0
        for block in FENCE.finditer(text):
            named = re.findall(r"`(src/[\w/]+\.py)`", text[previous_end : block.start()])
            previous_end = block.end()
            if block.group(1) != "python" or not named:
                continue
            shipped = set(_code_lines((ROOT / named[-1]).read_text()))
            for line in _code_lines(block.group(2)):
                if "..." not in line:
                    assert line in shipped, f"{doc.name} shows a line {named[-1]} lacks: {line}"
            shown += 1
    assert shown >= 2


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(doc: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (outside code blocks)."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", doc.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_pictures_and_links_of_the_docs_exist():
    checked = 0
    for doc in DOCS:
        for target in LINK.findall(FENCE.sub("", doc.read_text())):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            assert linked.is_file(), f"{doc.name} links to {target}, which does not exist"
            if anchor:
                assert anchor in _anchors(linked), f"{doc.name} links to a missing {target}"
            checked += 1
    assert checked >= 10, checked


def test_make_keeps_an_existing_venv():
    """What the CPU-only install relies on: make creates .venv only when it has no python."""
    recipe = subprocess.run(
        ["make", "-n", "-B", "install"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    creating = [line for line in recipe if "-m venv" in line]
    assert creating == ["test -x .venv/bin/python || python3 -m venv .venv"], recipe
    installing = [line for line in recipe if "pip install" in line and "-e" in line]
    assert installing and all("--upgrade" not in line for line in installing), recipe
