"""Loading the repository's benchmark and tool scripts (not a package) as modules in tests."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"


def load_script(path: Path, name: str, monkeypatch) -> ModuleType:
    """``path`` executed as module ``name`` (its functions defined; nothing run behind its
    ``__main__`` guard), registered in ``sys.modules`` for the test only; a benchmark script
    also finds its sibling modules (``common``)."""
    if path.parent == BENCHMARKS:
        monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module
