"""Turn a copy of practicum into your own project: package, commands, pyproject and README.

    python scripts/rename_project.py --package leafnet --name "Leaf Classifier" --author "Ada L."

It rewrites the copy it lives in (or --dest DIR) and nothing outside it. `copier copy --trust`
runs it for you. Standard library only: it runs under whichever Python has copier installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import keyword
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

OLD = "practicum"
# The name wherever it stands on its own, including in practicum_config, practicum-train and
# fit_practicum.py: underscores and dashes count as separators, letters and digits do not.
WORD = re.compile(r"(?<![A-Za-z0-9])practicum(?![A-Za-z0-9])")
# Never rewritten: caches and environments anywhere; run outputs and user data at the root; and
# copier's record of where the template came from (a path that may well contain the name).
SKIP_DIRS = {".git", ".venv", ".venv-oldest", "__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_DIRS.add(".mypy_cache")
SKIP_PATHS = {"logs", "outputs", "multirun", "wandb", "data", "benchmarks/results"}
SKIP_PATHS.add(".copier-answers.yml")
# The template's own machinery: a project made from it has no template left to generate from.
TEMPLATE_ONLY = (
    "copier.yml",
    ".copier-answers.yml.jinja",
    "scripts/rename_project.py",
    "tests/test_template.py",
    "tests/data/vae_before_regroup.ckpt",  # a checkpoint of practicum's paths before they moved
)
# A package named like a module the project imports, or like a script at its root, would shadow it.
LIBRARIES = {"torch", "torchvision", "torchmetrics", "lightning", "pytorch_lightning", "hydra"}
LIBRARIES |= {"omegaconf", "optuna", "sklearn", "numpy", "matplotlib", "rich", "wandb", "yaml"}
ROOT_NAMES = {"train", "eval", "predict", "conftest", "tests", "benchmarks", "conf", "src"}
README_NOTE = f"Generated from the {OLD} template."
TEMPLATE_SECTION = re.compile(r"^## Start your own project\n.*?(?=^## |\Z)", re.M | re.S)


def fail(message: str) -> None:
    sys.exit(f"rename_project: error: {message}")


def check_package(package: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", package):
        hint = re.sub(r"[^a-z0-9]+", "_", package.lower()).strip("_") or "my_project"
        hint = hint if hint[0].isalpha() else f"p{hint}"
        fail(
            f"--package {package!r} is not a valid package name: use lowercase letters, digits "
            f"and underscores, starting with a letter (for example --package {hint})"
        )
    if package == OLD:
        fail(f"--package {OLD} is the template's own name: choose your project's name")
    if keyword.iskeyword(package):
        fail(f"--package {package} is a Python keyword: choose another name")
    if package in LIBRARIES | ROOT_NAMES or package in getattr(sys, "stdlib_module_names", ()):
        fail(f"--package {package} would shadow the module {package!r}: choose another name")


def check_committed(dest: Path) -> None:
    """The rename rewrites files in place: in a git checkout, only over work that git can restore."""
    if not (dest / ".git").exists() or shutil.which("git") is None:
        return
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=dest, capture_output=True, text=True, check=False
    )
    if status.returncode == 0 and status.stdout.strip():
        fail(f"{dest} has uncommitted changes: commit or stash them first, then rename")


def skipped(rel: Path) -> bool:
    return rel.as_posix() in SKIP_PATHS or rel.name in SKIP_DIRS or rel.name.endswith(".egg-info")


def project_files(dest: Path) -> list[Path]:
    """Every regular file of the project, without following links out of it."""
    files = []
    for top, dirs, names in os.walk(dest):
        here = Path(top)
        dirs[:] = [d for d in dirs if not skipped((here / d).relative_to(dest))]
        files += [here / n for n in names if not skipped((here / n).relative_to(dest))]
    return [f for f in files if f.is_file() and not f.is_symlink()]


def rewrite(path: Path, package: str) -> bool:
    """Replace the name in a text file; binary files (a NUL byte, not UTF-8) are left alone."""
    data = path.read_bytes()
    if b"\0" in data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    new = WORD.sub(package, text)
    if new != text:
        path.write_bytes(new.encode("utf-8"))
    return new != text


def rename_paths(dest: Path, files: list[Path], package: str) -> None:
    """Rename files and folders named after practicum, deepest first so parents move last."""
    paths = {p for f in files for p in [f, *f.parents] if dest in p.parents}
    for path in sorted(paths, key=lambda p: len(p.parts), reverse=True):
        if WORD.search(path.name):
            path.rename(path.with_name(WORD.sub(package, path.name)))


def toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def update_pyproject(path: Path, name: str, author: str) -> None:
    text = path.read_text()
    description = (
        f"description = {toml_string(f'{name}: deep models with PyTorch Lightning and Hydra.')}"
    )
    text = re.sub(r"^authors = .*\n", "", text, flags=re.M)
    if author:
        description += f"\nauthors = [{{ name = {toml_string(author)} }}]"
    text = re.sub(r"^description = .*$", lambda _: description, text, count=1, flags=re.M)
    path.write_text(text)


def update_readme(path: Path, name: str) -> None:
    """The project's name as the heading; the template-only section goes, the rest stays true."""
    text = TEMPLATE_SECTION.sub("", path.read_text())
    # the intro speaks of a template to fork; the new project is the fork
    text = text.replace("Hydra template that puts", "Hydra project that puts", 1)
    text = text.replace("\nFork it (or copy it) as the starter of your own project.", "", 1)
    heading = f"# {name}\n\n{README_NOTE}\n"
    text = re.sub(r"^# .*\n", lambda _: heading, text, count=1, flags=re.M)
    path.write_text(text)


def reformat(dest: Path) -> None:
    """A name of another length moves line breaks and import order: let ruff redo them, if here."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if not ruff:
        print("ruff not found: run `ruff check --fix . && ruff format .` for `make lint` to pass")
        return
    for args in (["check", "--fix", "--select", "I"], ["format"]):
        subprocess.run([ruff, *args, "--no-cache", "--quiet", "."], cwd=dest, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", required=True, help="Python package name, e.g. leafnet")
    parser.add_argument("--name", required=True, help="project name for the README heading")
    parser.add_argument("--author", default="", help="author for pyproject.toml")
    parser.add_argument("--dest", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()

    dest = args.dest.resolve()
    check_package(args.package)
    if not (dest / "src" / OLD).is_dir():
        fail(f"{dest} does not look like a copy of {OLD}: it has no src/{OLD}/")
    if (dest / "src" / args.package).exists():
        fail(f"{dest / 'src' / args.package} already exists: choose another --package")
    check_committed(dest)

    for rel in TEMPLATE_ONLY:
        (dest / rel).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # scripts/ held only this script
        (dest / "scripts").rmdir()
    files = project_files(dest)
    changed = sum(rewrite(f, args.package) for f in files)
    rename_paths(dest, files, args.package)
    update_pyproject(dest / "pyproject.toml", args.name, args.author)
    update_readme(dest / "README.md", args.name)
    reformat(dest)
    print(f"{args.name}: renamed {OLD} -> {args.package} in {changed} files under {dest}")


if __name__ == "__main__":
    main()
