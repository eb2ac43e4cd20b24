"""The shape of the code: layers kept, no import cycles, one run a leaf, one writer of
summary.json, no two modules of one name, the map in docs/extending.md complete, old paths kept."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT

SOURCE = ROOT / "src" / "practicum"


def _graph_module():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts/import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module
    spec.loader.exec_module(module)
    return module


def test_no_import_cycle_among_practicum_modules() -> None:
    graph_module = _graph_module()
    graph = graph_module.import_graph(SOURCE)
    assert "practicum.run.one_run" in graph and "practicum.cli.entry" in graph
    cycles = graph_module.find_cycles(graph)
    assert cycles == [], f"import cycles: {cycles}"


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path) -> None:
    graph_module = _graph_module()
    package = tmp_path / "practicum"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from practicum.sub import b\n")
    # an import inside a function still makes a cycle, and a relative import counts too
    (package / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (package / "c.py").write_text("import practicum.a\n")
    graph = graph_module.import_graph(package)
    assert graph["practicum.c"] == {"practicum.a"}
    assert graph_module.find_cycles(graph) == [["practicum.a", "practicum.sub.b"]]


def test_one_run_is_a_leaf() -> None:
    """run.py imports no mode: nothing from search/, autopilot/, modes or cli."""
    graph = _graph_module().import_graph(SOURCE)
    banned = (
        "practicum.search",
        "practicum.autopilot",
        "practicum.cli.modes",
        "practicum.cli.entry",
    )
    assert not {m for m in graph["practicum.run.one_run"] if m.startswith(banned)}


def test_summary_json_has_one_writer() -> None:
    """Only practicum/methodology/run_summary.py names summary.json; everyone else goes through RunSummary."""
    writers = [
        path.relative_to(SOURCE).as_posix()
        for path in SOURCE.rglob("*.py")
        if any(
            isinstance(node, ast.Constant) and node.value == "summary.json"
            for node in ast.walk(ast.parse(path.read_text()))
        )
    ]
    assert writers == ["methodology/run_summary.py"]


def test_the_layers_are_kept() -> None:
    """import-linter's contracts (pyproject.toml): each layer imports only the layers below it."""
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_no_two_modules_share_a_name() -> None:
    """A name says what a module does, once: only each family's base.py repeats."""
    names = Counter(
        path.name
        for path in (ROOT / "src").rglob("*.py")
        if path.name not in ("__init__.py", "base.py")
    )
    assert [name for name, count in names.items() if count > 1] == []


def test_the_top_level_is_grouped_by_role() -> None:
    modules = {path.name for path in SOURCE.glob("*.py")}
    assert modules == {"__init__.py", "errors.py"}


def mapped_modules(doc: Path) -> set[str]:
    """The modules the map of docs/extending.md names, as paths below src/."""
    block = doc.read_text().split("## Where the code lives", 1)[1].split("```", 2)[1]
    found, folders = set(), []  # folders: (indent, path) of the folders the line is inside
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        words = line.split()
        if not words:
            continue
        while folders and folders[-1][0] >= indent:
            folders.pop()
        if words[0].endswith("/"):
            folders.append((indent, words[0]))
            continue
        if not folders or not folders[0][1].startswith("src/"):
            continue
        where = "".join(path for _, path in folders).removeprefix("src/")
        for word in words:
            if not re.fullmatch(r"\w+\.py", word):
                break
            found.add(where + word)
    return found


def test_the_map_of_the_code_is_complete() -> None:
    modules = {
        path.relative_to(ROOT / "src").as_posix()
        for path in (ROOT / "src").rglob("*.py")
        if path.name != "__init__.py"  # a folder's own docstring
    }
    mapped = mapped_modules(ROOT / "docs" / "extending.md") - {
        m for m in mapped_modules(ROOT / "docs" / "extending.md") if m.endswith("__init__.py")
    }
    assert sorted(modules - mapped) == [], "modules missing from the map in docs/extending.md"
    assert sorted(mapped - modules) == [], (
        "the map in docs/extending.md names modules that are gone"
    )


@pytest.mark.parametrize("old", sorted(__import__("practicum").MOVED))
def test_a_moved_module_keeps_its_old_path(old: str) -> None:
    """Checkpoints and user configs name `_target_`s by the paths they were written with."""
    import practicum

    module = importlib.import_module(old)
    assert module is importlib.import_module(practicum.MOVED[old])
    assert module.__spec__.name == practicum.MOVED[old]  # its own spec, not the alias's


def test_an_old_target_resolves_and_is_trusted() -> None:
    from hydra.utils import get_class

    from practicum.config.trust import check_target

    assert get_class("practicum.nets.generative.ConvVAE").__module__ == "practicum.nets.generators"
    assert check_target("practicum.checkpointing.RunCSVLogger").__name__ == "RunCSVLogger"
