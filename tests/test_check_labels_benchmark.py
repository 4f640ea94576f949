"""benchmarks/check_labels.py's figures: each label's truth and the ROC area of the order."""
from __future__ import annotations

import numpy as np
import pytest

from _scripts import BENCHMARKS, load_script


@pytest.fixture
def bench(monkeypatch):
    return load_script(BENCHMARKS / "check_labels.py", "benchmark_check_labels", monkeypatch)


def test_a_label_is_scored_by_its_best_match(bench):
    gt = np.zeros((10, 10), int)
    gt[:, :5], gt[:, 5:] = 1, 2
    plane = np.zeros_like(gt)
    plane[:, :5] = 7          # exactly object 1
    plane[:, 5:8] = 9         # 30 of object 2's 50 pixels
    assert bench.best_iou(plane, gt) == {7: 1.0, 9: pytest.approx(0.6)}


def test_the_area_under_the_roc_curve_counts_wrong_labels_ranked_first(bench):
    # agreements: wrong labels (True) low, right ones high, one pair out of order
    rows = [(0.1, True), (0.3, True), (0.95, True), (0.9, False), (0.97, False), (0.99, False)]
    out = bench.summary(rows)
    assert out["labels"] == 6 and out["wrong_share"] == 0.5
    assert out["auc"] == pytest.approx(8 / 9)  # 8 of the 9 wrong x right pairs in order
    assert out["wrong_in_first_fifth"] == pytest.approx(1 / 3)
    assert bench.summary([(0.5, False), (0.9, False)])["auc"] is None  # one class: no area


def test_synthetic_planes_keep_every_chosen_object_and_corrupt_some(bench):
    gt = np.zeros((64, 64), int)
    for k in range(6):
        r, c = divmod(k, 3)
        gt[4 + 20 * r: 16 + 20 * r, 4 + 20 * c: 16 + 20 * c] = k + 1
    plane = bench.synthetic_plane(gt, 6, np.random.default_rng(3))
    assert set(np.unique(plane)) == set(range(7))
    changed = [k for k in range(1, 7) if not np.array_equal(plane == k, gt == k)]
    assert 0 < len(changed) < 6
