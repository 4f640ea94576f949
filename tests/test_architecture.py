"""The layers of the package: imports point one way, no circles, nothing outside ``_qt`` imports
Qt or napari (docs/architecture.md draws them)."""
from __future__ import annotations

import ast
import subprocess
import sys

from conftest import REPO

PACKAGE = REPO / "src" / "napari_ritm"

#: layer -> the layers its modules may import from (their own included)
ALLOWED = {
    "model": {"model"},
    "inference": {"inference", "model"},
    "session": {"session", "inference", "model"},
    "evaluation": {"evaluation", "inference", "model"},
    "training": {"training", "evaluation", "inference", "model"},
    "commands": {"commands", "training", "evaluation", "session", "inference", "model", ""},
    "_qt": {"_qt", "commands", "training", "evaluation", "session", "inference", "model", ""},
    "": {"", "commands", "training", "evaluation", "session", "inference", "model"},
}
GUI = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "vispy", "superqt")


def modules() -> dict[str, list[str]]:
    """Module name -> the napari_ritm modules it imports (at any level of the file)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imported = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.append(node.module)
                imported += [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                imported += [a.name for a in node.names]
        out[name] = sorted({m for m in imported if m.startswith("napari_ritm.")})
    return out


def layer(module: str) -> str:
    """The layer (sub-package) of a module; "" for the package root (``cli``, ``__init__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (len(parts) > 2 or parts[1] in ALLOWED) else ""


def test_imports_point_down_the_layers():
    names = modules()
    wrong = [f"{m} -> {i}" for m, imports in names.items() for i in imports
             if (i in names or i.rsplit(".", 1)[0] in names)
             and layer(i if i in names else i.rsplit(".", 1)[0]) not in ALLOWED[layer(m)]]
    assert wrong == []


def test_no_import_circles():
    names = modules()
    graph = {m: {i if i in names else i.rsplit(".", 1)[0] for i in imports} & set(names) - {m}
             for m, imports in names.items()}
    # a package's __init__ re-exporting its modules is not a circle
    graph = {m: {i for i in deps if not (m.startswith(i + ".") and i in names)}
             for m, deps in graph.items()}
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_no_module_outside_qt_imports_qt_or_napari():
    headless = [m for m in modules() if layer(m) != "_qt"]
    code = (f"import importlib, sys; [importlib.import_module(m) for m in {headless!r}]; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {GUI!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
