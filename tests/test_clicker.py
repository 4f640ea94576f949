"""The evaluation's next-click rule against the official one (shared/ref/clicker.npz)."""
from __future__ import annotations

import numpy as np
import pytest

from napari_ritm.evaluation.clicker import Clicker
from napari_ritm.inference.clicks import Click


@pytest.fixture(scope="module")
def clicker_ref(ref_dir):
    with np.load(ref_dir / "clicker.npz") as data:
        return {k: data[k] for k in data.files}


def test_every_reference_case_matches(clicker_ref):
    cases = sorted({k.split("_")[0] for k in clicker_ref})
    assert len(cases) == 80
    mismatches = []
    for case in cases:
        clicker = Clicker(clicker_ref[f"{case}_gt"])
        for y, x, positive in clicker_ref[f"{case}_prior_clicks"]:
            clicker.add_click(Click(int(y), int(x), bool(positive)))
        click = clicker.next_click(clicker_ref[f"{case}_pred"])
        got = (click.positive, click.y, click.x)
        want = (bool(clicker_ref[f"{case}_is_positive"]), *map(int, clicker_ref[f"{case}_yx"]))
        if got != want:
            mismatches.append((case, got, want))
    assert not mismatches


def test_first_click_is_the_object_centre():
    gt = np.zeros((9, 11), dtype=np.int32)
    gt[2:7, 3:8] = 1
    click = Clicker(gt).next_click(np.zeros_like(gt, dtype=bool))
    assert (click.y, click.x, click.positive) == (4, 5, True)


def test_border_counts_as_boundary():
    # without the 1-px padding the deepest false-negative pixel would be on the image edge
    gt = np.zeros((10, 10), dtype=np.int32)
    gt[:, :4] = 1
    click = Clicker(gt).next_click(np.zeros((10, 10), dtype=bool))
    assert click.positive and click.x in (1, 2) and 1 <= click.y <= 8


def test_tie_gives_negative_click_and_clicked_pixels_are_excluded():
    gt = np.zeros((12, 12), dtype=np.int32)
    gt[1:4, 1:4] = 1
    pred = np.zeros((12, 12), dtype=bool)
    pred[7:10, 7:10] = True
    clicker = Clicker(gt)
    first = clicker.next_click(pred)
    assert (first.positive, first.y, first.x) == (False, 8, 8)
    second = clicker.next_click(pred)
    assert (second.positive, second.y, second.x) == (True, 2, 2)
    assert len(clicker.clicks) == 2


def test_ignored_pixels_never_get_clicks():
    gt = np.zeros((10, 10), dtype=np.int32)
    gt[2:8, 2:8] = -1
    gt[4:6, 4:6] = 1
    click = Clicker(gt).next_click(np.zeros((10, 10), dtype=bool))
    assert (click.y, click.x) == (4, 4)
    assert Clicker(gt).next_click(np.ones((10, 10), dtype=bool)).positive is False


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        Clicker(np.zeros((4, 4), dtype=np.int32)).next_click(np.zeros((4, 5), dtype=bool))
