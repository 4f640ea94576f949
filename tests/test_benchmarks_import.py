"""Every benchmark script still imports against the package (its names, modules and the
helpers the scripts share), so that a refactor cannot leave one broken until someone runs it."""
from __future__ import annotations

import pytest

from _scripts import BENCHMARKS, load_script

SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py"))
HELPERS = {"common", "latency_extras"}  # modules the scripts import, not scripts themselves


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_the_benchmark_imports(script, monkeypatch):
    module = load_script(script, f"benchmark_{script.stem}", monkeypatch)
    assert script.stem in HELPERS or callable(getattr(module, "main", None))
