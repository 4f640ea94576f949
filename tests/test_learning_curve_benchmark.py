"""benchmarks/learning_curve.py's paired change between two points of a training run."""
from __future__ import annotations

import pytest

from _scripts import BENCHMARKS, load_script


@pytest.fixture
def bench(monkeypatch):
    return load_script(BENCHMARKS / "learning_curve.py", "benchmark_learning_curve", monkeypatch)


def run(samples: dict[str, list[dict]]) -> dict:
    return {"datasets": {name: {"samples": s} for name, s in samples.items()}}


def obj(image: str, label: int, ious: list[float]) -> dict:
    return {"image": image, "label": label, "ious": ious}


def test_the_change_pairs_objects_by_image_and_label_not_by_order(bench):
    base = run({"a": [obj("x.png", 1, [0.5, 0.95]), obj("x.png", 2, [0.95]),
                      obj("y.png", 1, [0.7, 0.8, 0.91])]})
    # the same objects in another order, one more object only the later run measured
    later = run({"a": [obj("y.png", 1, [0.92]), obj("x.png", 1, [0.6, 0.93]),
                       obj("x.png", 2, [0.96]), obj("z.png", 1, [0.1])]})
    change = bench.paired_change(later, base)["a"]
    assert change["objects"] == 3
    # NoC@90 from 2, 1, 3 to 1, 2, 1: -1, +1, -2 -> mean -2/3
    assert change["NoC@90"]["mean"] == pytest.approx(-2 / 3)
    assert change["IoU@1"]["mean"] == pytest.approx((0.22 + 0.1 + 0.01) / 3)
    assert change["IoU@1"]["se"] > 0


def test_a_set_one_run_lacks_or_with_one_shared_object_is_left_out(bench):
    base = run({"a": [obj("x.png", 1, [0.5])], "b": [obj("x.png", 1, [0.5])]})
    later = run({"a": [obj("x.png", 1, [0.6])], "c": [obj("x.png", 1, [0.6])]})
    assert bench.paired_change(later, base) == {}
