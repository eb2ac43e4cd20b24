"""The shape of the code: no import cycles, run.py a leaf, one writer of summary.json."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

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
    assert "practicum.run" in graph and "practicum.cli" in graph
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
    banned = ("practicum.search", "practicum.autopilot", "practicum.modes", "practicum.cli")
    assert not {m for m in graph["practicum.run"] if m.startswith(banned)}


def test_summary_json_has_one_writer() -> None:
    """Only practicum/summary.py names summary.json; everyone else goes through RunSummary."""
    writers = [
        path.relative_to(SOURCE).as_posix()
        for path in SOURCE.rglob("*.py")
        if any(
            isinstance(node, ast.Constant) and node.value == "summary.json"
            for node in ast.walk(ast.parse(path.read_text()))
        )
    ]
    assert writers == ["summary.py"]
