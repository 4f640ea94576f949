"""scripts/import_public_sets.py: labels in the shared sets' convention, and a split that keeps
each animal on one side."""
from __future__ import annotations

import numpy as np
import pytest

from _scripts import REPO, load_script

SCRIPT = REPO / "scripts" / "import_public_sets.py"


@pytest.fixture
def script(monkeypatch):
    return load_script(SCRIPT, "import_public_sets", monkeypatch)


def test_small_objects_are_dropped_and_ids_run_from_one(script):
    labels = np.zeros((20, 20), np.int32)
    labels[:5, :5] = 40        # 25 px
    labels[10, 10:13] = 7      # 3 px: dropped
    labels[12:20, 12:20] = 300
    out = script.clean_labels(labels)
    assert out.dtype == np.uint16
    assert sorted(np.unique(out).tolist()) == [0, 1, 2]
    assert np.array_equal(out > 0, (labels == 40) | (labels == 300))


def test_the_split_never_puts_one_animal_on_both_sides(script):
    groups = {"r1_a": "r1", "r1_b": "r1", "r2_a": "r2", "r3_a": "r3", "r4_a": "r4",
              "r4_b": "r4", "r5_a": "r5", "r6_a": "r6", "r7_a": "r7", "r8_a": "r8"}
    entry = script.split_entry(groups)
    assert len(entry["val"]) == 2
    assert sorted(entry["train"] + entry["val"]) == sorted(groups)
    assert sorted(entry["val_select"] + entry["val_report"]) == entry["val"]
    assert entry["val_select"] and entry["val_report"]
    train_groups = {groups[n] for n in entry["train"]}
    assert not train_groups & {groups[n] for n in entry["val"]}


def test_images_without_groups_are_split_one_by_one(script):
    entry = script.split_entry({f"img{k}": None for k in range(70)})
    assert len(entry["val"]) == 14 and len(entry["val_select"]) == 7
