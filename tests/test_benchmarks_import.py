"""Every benchmark script still imports against the package (its names, modules and the
helpers the scripts share), so that a refactor cannot leave one broken until someone runs it."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py"))
HELPERS = {"common", "latency_extras"}  # modules the scripts import, not scripts themselves


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_the_benchmark_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"benchmark_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)  # defines its functions; runs nothing (__main__ guard)
    assert script.stem in HELPERS or callable(getattr(module, "main", None))
