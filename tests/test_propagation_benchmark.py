"""benchmarks/propagation.py's figures: a stop rule applied offline to recorded steps, and the
3D IoU of stopping exactly at the object's true ends."""
from __future__ import annotations

import json

import pytest

from _scripts import BENCHMARKS, load_script


@pytest.fixture
def bench(monkeypatch):
    return load_script(BENCHMARKS / "propagation.py", "benchmark_propagation", monkeypatch)


def step(z, inside, area, inter, gt_area, prev_area=100):
    return {"z": z, "inside": inside, "area": area, "prev_area": prev_area, "inter": inter,
            "gt_area": gt_area, "iou_prev": 0.8, "fresh_iou_prev": 0.8, "agreement": 0.9,
            "click_prob": 0.9, "mean_prob": 0.9, "intensity_change": 0.0}


@pytest.fixture
def trajectory():
    """An object on slices 3..7 (100 px each), propagated from slice 5: up, slices 6 and 7 right
    and slice 8 (past the end) 50 px wrong; down, slice 4 right, then slice 3 lost (the mask
    vanished: 5 px, none of them right)."""
    return {"id": 1, "first": 3, "last": 7, "start": 5, "voxels": 500, "start_area": 100,
            "sides": {"1": [step(6, True, 100, 100, 100), step(7, True, 100, 100, 100),
                            step(8, False, 50, 0, 0)],
                      "-1": [step(4, True, 100, 100, 100), step(3, True, 5, 0, 100)]}}


def test_a_rule_that_never_fires_writes_every_recorded_slice(bench, trajectory):
    figures = bench.apply_rule(lambda f: False, [trajectory])
    assert figures["slices_past_end"] == 1 and figures["no_slice_past_end"] == 0.0
    assert figures["missed_per_object"] == 0
    assert figures["iou_3d"] == pytest.approx(400 / (500 + 50 + 5), abs=1e-3)


def test_a_rule_that_fires_on_small_masks_stops_before_them(bench, trajectory):
    figures = bench.apply_rule(lambda f: f.area < 60, [trajectory])
    assert figures["slices_past_end"] == 0 and figures["most_past_end"] == 0
    assert figures["missed_per_object"] == 1            # slice 3, below where it stopped
    assert figures["iou_3d"] == pytest.approx(400 / 500, abs=1e-3)


def test_the_oracle_keeps_the_slices_inside_the_ends_only(bench, trajectory):
    figures = bench.oracle_stop([trajectory])
    assert figures["objects"] == 1
    assert figures["iou_3d"] == pytest.approx(400 / (500 + 5), abs=1e-3)


def test_rules_are_applied_to_saved_records_without_the_network(bench, trajectory, tmp_path,
                                                                monkeypatch):
    records = tmp_path / "records.json"
    records.write_text(json.dumps({"nuclei": [trajectory]}))
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "propagate_all", lambda args: pytest.fail("ran the network"))
    assert bench.main(["--from-records", str(records), "--tag", "saved"]) == 0
    run = json.loads((tmp_path / "propagation_select.json").read_text())["runs"]["saved"]
    assert run["rules"]["vanished"]["nuclei"] == bench.apply_rule(
        bench.STOP_RULES["vanished"], [trajectory])
    assert run["oracle_stop"]["nuclei"]["iou_3d"] == pytest.approx(400 / 505, abs=1e-3)


def test_the_oracle_reports_slices_by_quarter_of_the_way_to_an_end(bench, trajectory):
    quarters = {q["quarter"]: q for q in bench.oracle_stop([trajectory])["by_quarter"]}
    # reach 2 each way: slices 4 and 6 are halfway (quarter 3), slices 3 and 7 at the ends
    assert quarters[3] == {"quarter": 3, "slices": 2, "slice_iou": 1.0, "area_over_true": 1.0}
    assert quarters[4]["slices"] == 2 and quarters[4]["slice_iou"] == pytest.approx(0.5)
    assert quarters[4]["area_over_true"] == pytest.approx((1.0 + 0.05) / 2, abs=0.01)
