"""practicum uses only the public API of the libraries it builds on.

A release of Lightning, Rich, torch or Hydra may rename any underscore name without notice; a
fork that imports, subclasses or pokes one stops at `import` or mid-run. This test reads every
module of src/practicum and fails on such a use. The one place where a speedup may touch a private
name is practicum/speedups.py (none is there now: none saved 3% of the fit in `make bench`), and
only inside a function, guarded by a check that the name exists, with the stock behaviour otherwise.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "practicum"
FOREIGN = {
    "lightning",
    "pytorch_lightning",
    "lightning_fabric",
    "rich",
    "torch",
    "torchvision",
    "torchmetrics",
    "hydra",
    "omegaconf",
}
GUARDED = SRC / "speedups.py"


def is_private(name: str) -> bool:
    """`_x`, not `__x__` (Python's) nor `_x_` (Hydra's public config keys: `_target_`)."""
    return name.startswith("_") and not name.endswith("_")


def modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in sorted(SRC.rglob("*.py"))}


def own_private_names(trees: dict[Path, ast.Module]) -> set[str]:
    """Underscore names practicum defines itself: functions, classes, class and module attributes,
    and `self._x = ...` in its own classes."""
    names: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
            ):
                names.add(node.attr)
            elif isinstance(node, ast.alias) and node.asname:
                names.add(node.asname)
    return {name for name in names if is_private(name)}


def foreign_aliases(tree: ast.Module) -> dict[str, str]:
    """Local names bound to a foreign module or object: {"nn": "torch.nn", "pl": "lightning.pytorch"}."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FOREIGN:
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] in FOREIGN
        ):
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def top_level(tree: ast.Module) -> list[ast.AST]:
    """The statements that run at import: everything outside function bodies."""
    found, stack = [], list(tree.body)
    while stack:
        node = stack.pop()
        found.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))
    return found


def private_uses(path: Path, tree: ast.Module, own: set[str]) -> list[str]:
    where = path.relative_to(SRC.parent)
    guarded = path == GUARDED
    nodes = top_level(tree) if guarded else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            names = [alias.name for alias in node.names]
            if parts[0] in FOREIGN and any(map(is_private, parts + names)):
                found.append(f"{where}:{node.lineno} from {node.module} import {', '.join(names)}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in FOREIGN and any(map(is_private, parts)):
                    found.append(f"{where}:{node.lineno} import {alias.name}")
        elif isinstance(node, ast.Attribute) and is_private(node.attr) and node.attr not in own:
            found.append(f"{where}:{node.lineno} .{node.attr}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
            and node.args[1].value not in own
        ):
            found.append(f"{where}:{node.lineno} {node.func.id}(..., {node.args[1].value!r})")
        elif isinstance(node, ast.Compare):
            # a private name compared by string: `if name == "_current_fx_name"`
            for side in [node.left, *node.comparators]:
                if (
                    isinstance(side, ast.Constant)
                    and isinstance(side.value, str)
                    and re.fullmatch(r"_[A-Za-z]\w*", side.value)
                    and is_private(side.value)
                    and side.value not in own
                ):
                    found.append(f"{where}:{node.lineno} {side.value!r}")
    return found


def foreign_classes(tree: ast.Module) -> list[str]:
    """Classes of this module with a base from a foreign package."""
    aliases = foreign_aliases(tree)
    names = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                root = base
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in aliases:
                    names.append(node.name)
                    break
    return names


def test_no_private_name_of_a_library_is_imported_or_touched():
    trees = modules()
    own = own_private_names(trees)
    found = [use for path, tree in trees.items() for use in private_uses(path, tree, own)]
    assert not found, "private names of other libraries:\n" + "\n".join(found)


def test_no_class_overrides_or_shadows_a_private_name_of_its_library_base():
    """A subclass's own `_x` (method or `self._x`) must not be one its Lightning/Rich/torch base uses."""
    found = []
    for path, tree in modules().items():
        if path == GUARDED:
            continue
        module_name = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        for class_name in foreign_classes(tree):
            cls = getattr(importlib.import_module(module_name), class_name)
            bases = [
                base
                for base in cls.__mro__[1:]
                if base.__module__.split(".")[0] in FOREIGN and base is not object
            ]
            base_source = "\n".join(_source(base) for base in bases)
            class_node = next(
                n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name
            )
            mine = {n.name for n in class_node.body if isinstance(n, ast.FunctionDef)}
            mine |= {
                n.attr
                for n in ast.walk(class_node)
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                if n.value.id == "self"
            }
            for name in sorted(filter(is_private, mine)):
                if any(hasattr(base, name) for base in bases) or re.search(
                    rf"\b{name}\b", base_source
                ):
                    found.append(f"{module_name}.{class_name}.{name}")
    assert not found, "overrides or shadows a private name of a library base class:\n" + "\n".join(
        found
    )


def _source(cls: type) -> str:
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        return ""


def test_the_check_catches_what_it_is_for(tmp_path: Path):
    """The rules above, on a module that breaks each of them."""
    source = """
from lightning.pytorch.callbacks.progress import rich_progress
from torchvision.models._utils import IntermediateLayerGetter
from torch import nn

class Bar(rich_progress._RefreshThread):
    def run(self):
        with self.live._lock:
            getattr(self.live, "_refresh_thread")
            isinstance(self, nn.modules.batchnorm._BatchNorm)
            self._mine = 1
            return name == "_current_fx_name"
"""
    path = SRC / "example.py"
    found = private_uses(path, ast.parse(source), own={"_mine"})
    assert {use.split(" ", 1)[1] for use in found} == {
        "from torchvision.models._utils import IntermediateLayerGetter",
        "._RefreshThread",
        "._lock",
        "getattr(..., '_refresh_thread')",
        "._BatchNorm",
        "'_current_fx_name'",
    }


def test_the_default_callbacks_are_lightnings_own_and_the_bar_shows_epoch_metrics(tmp_path: Path):
    import io

    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar

    from practicum.run.build import build_callbacks, build_datamodule, build_task, build_trainer

    from conftest import compose_train

    cfg = compose_train(
        tmp_path,
        [
            "trainer.max_epochs=3",
            "+callbacks.progress_bar.console_kwargs.file=null",
            "+callbacks.progress_bar.console_kwargs.force_terminal=true",
            "+callbacks.progress_bar.console_kwargs.width=120",
        ],
    )
    kinds = [type(callback) for callback in build_callbacks(cfg)]
    assert kinds.count(ModelCheckpoint) == 2  # the best epoch's, and last.ckpt
    assert RichProgressBar in kinds and LearningRateMonitor in kinds
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule, task = build_datamodule(cfg), build_task(cfg)
    trainer = build_trainer(cfg)
    bar = next(cb for cb in trainer.callbacks if isinstance(cb, RichProgressBar))
    screen = io.StringIO()
    bar._console_kwargs["file"] = screen  # a StringIO is no config value
    trainer.fit(task, datamodule=datamodule)
    assert "Epoch 2/2" in screen.getvalue() and "val/acc" in screen.getvalue()
