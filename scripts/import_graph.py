"""Print which practicum modules import which, and any import cycle among them.

    python scripts/import_graph.py            # one line per module: the practicum modules it imports
    python scripts/import_graph.py --cycles   # only the cycles (exit 1 when there is one)

Every import counts, also those inside functions: a cycle hidden in a function is still a cycle a
reader has to untangle. Read from the source with `ast`; nothing is imported.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = "practicum"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE


def module_name(path: Path, root: Path = SOURCE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str], root: Path = SOURCE) -> set[str]:
    """The practicum modules `path` imports (`from practicum.x import y` counts y when it is a module)."""
    found: set[str] = set()
    this = module_name(path, root)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            # the longest practicum module the name points into
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != this and name != PACKAGE:
                found.add(name)
    return found


def import_graph(root: Path = SOURCE) -> dict[str, set[str]]:
    paths = sorted(root.rglob("*.py"))
    modules = {module_name(p, root) for p in paths}
    return {module_name(p, root): imported_modules(p, modules, root) for p in paths}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", action="store_true", help="print only the import cycles")
    args = parser.parse_args()
    graph = import_graph()
    short = len(PACKAGE) + 1
    if not args.cycles:
        for module, imports in sorted(graph.items()):
            names = ", ".join(sorted(name[short:] for name in imports)) or "-"
            print(f"{module[short:] or PACKAGE:32} -> {names}")
    cycles = find_cycles(graph)
    for cycle in cycles:
        print("cycle: " + " <-> ".join(name[short:] for name in cycle))
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports, {len(cycles)} cycles")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
