"""benchmarks/refine.py's summaries: the rule for a correction that made the mask worse, and
the overview of runs that pools the kinds of start mask by their objects."""
from __future__ import annotations

import pytest

from _scripts import BENCHMARKS, load_script


@pytest.fixture
def bench(monkeypatch):
    return load_script(BENCHMARKS / "refine.py", "benchmark_refine", monkeypatch)


def test_worse_means_more_than_005_below_the_start_within_three_clicks(bench):
    assert bench.made_worse({"start": 0.80, "refine": [0.81, 0.74, 0.95]})
    assert not bench.made_worse({"start": 0.80, "refine": [0.76, 0.78, 0.95]})
    assert not bench.made_worse({"start": 0.80, "refine": [0.81, 0.82, 0.85, 0.10]})


def kind(objects: int, refine: float, scratch: float, worse: float) -> dict:
    return {"objects": objects, "worse_share": worse,
            "NoC@90": {"refine": refine, "scratch": scratch, "ratio": refine / scratch}}


def test_the_overview_weighs_each_kind_by_its_objects(bench):
    results = {"runs": {
        "a": {"sets": {"s": {"merged": kind(1, 2.0, 4.0, 0.0), "loose": kind(3, 6.0, 4.0, 0.5),
                             "split": kind(0, 0.0, 1.0, 0.0)}}},
        "b": {"sets": {"t": {"tight": kind(2, 1.0, 2.0, 0.0)}}},
    }}
    table = bench.overview(results, ["a", "b"]).splitlines()
    assert table[0] == "| run | s | t |"
    # s: refining (2 + 3 * 6) / 4 = 5, scratch 4; ratios 0.5 and 1.5 -> median 1.0; 3 of 8 worse
    assert table[2] == "| a | 5.00 / 4.00, ×1.00, 38% worse | – |"
    assert table[3] == "| b | – | 1.00 / 2.00, ×0.50, 0% worse |"
