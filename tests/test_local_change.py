"""Correction clicks change a region only where they were clicked: the clicked region and thin
outline changes are kept, a wide change elsewhere is undone, in the window holding both masks."""
from __future__ import annotations

import numpy as np

from _fakes import FloodNet
from napari_ritm.inference.base import LocalProbs
from napari_ritm.inference.clicks import Click
from napari_ritm.inference.local_change import keep_change_at, union_roi
from napari_ritm.inference.window import WindowPredictor

SHAPE = (200, 200)


def local(mask: np.ndarray, roi=(0, 199, 0, 199)) -> LocalProbs:
    rmin, rmax, cmin, cmax = roi
    return LocalProbs(roi, mask[rmin:rmax + 1, cmin:cmax + 1].astype(np.float32), SHAPE)


def test_union_roi_holds_both_windows():
    assert union_roi((10, 20, 30, 40), (5, 15, 35, 60)) == (5, 20, 30, 60)


def test_only_the_clicked_region_and_thin_changes_are_kept():
    before = np.zeros(SHAPE, bool)
    before[20:80, 20:80] = True     # the object, a lobe (rows 80-99) missing
    before[120:180, 120:180] = True  # another region of the mask, far from the click
    after = np.zeros(SHAPE, bool)
    after[21:100, 20:80] = True     # lobe added (clicked); top outline 1 px tighter (thin)
    # the network dropped the far region: a wide change away from the click
    kept = keep_change_at(local(before), local(after), Click(90, 50, True), 0.5, thin=0.15)
    mask = kept.full() > 0.5
    assert mask[80:100, 20:80].all()  # the clicked lobe
    assert not mask[20, 20:80].any()  # the thin outline change
    assert mask[120:180, 120:180].all()  # the far region stays as it was


def test_a_wide_change_elsewhere_is_undone_even_when_the_click_changed_nothing_wide():
    before = np.zeros(SHAPE, bool)
    before[20:80, 20:80] = True
    after = before.copy()
    after[20:80, 60:80] = False  # 20 px wide: removed
    after[85, 50] = True  # the clicked pixel, now inside
    kept = keep_change_at(local(before), local(after), Click(85, 50, True), 0.5, thin=0.15)
    mask = kept.full() > 0.5
    assert mask[85, 50] and mask[20:80, 60:80].all()


def test_the_prediction_stands_when_the_click_did_not_change_its_pixel():
    before = np.zeros(SHAPE, bool)
    before[20:80, 20:80] = True
    after = np.zeros(SHAPE, bool)
    after[20:80, 20:50] = True
    new = local(after)
    assert keep_change_at(local(before), new, Click(150, 150, False), 0.5, thin=0.15) is new


def test_masks_in_different_windows_merge_in_the_window_holding_both():
    before = np.zeros(SHAPE, bool)
    before[20:60, 20:60] = True
    after = np.zeros(SHAPE, bool)
    after[20:60, 20:90] = True
    kept = keep_change_at(local(before, (10, 70, 10, 70)), local(after, (0, 120, 0, 120)),
                          Click(40, 80, True), 0.5, thin=0.15)
    assert kept.roi == (0, 120, 0, 120)
    np.testing.assert_array_equal(kept.full() > 0.5, after)


def disks(shape, centres, radius):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return [(rows - y) ** 2 + (cols - x) ** 2 <= radius ** 2 for y, x in centres]


def test_a_refining_click_keeps_what_it_was_not_aimed_at():
    # two bright nuclei; the label to refine misses the left one's lower half and bled into the
    # right one: a click on the missing half fixes only that half
    left, right = disks((300, 300), [(150, 100), (150, 190)], 40)
    image = np.where(left | right, 200, 0).astype(np.uint8)
    label = (left & (np.arange(300)[:, None] < 150)) | (right & (np.arange(300)[None] < 200))
    click = [Click(175, 100, True)]
    for local_corrections, right_part_kept in ((True, True), (False, False)):
        predictor = WindowPredictor(FloodNet(), local_corrections=local_corrections)
        predictor.set_image(image)
        mask = predictor.predict(click, prev_mask=label.astype(np.float32)) > 0.5
        assert mask[left].mean() > 0.98  # (the window's resizing blurs the outline)
        share = mask[right & label].mean()
        assert share > 0.98 if right_part_kept else share < 0.02


def test_local_corrections_last_the_refined_object_and_its_undo_only():
    left, right, below = disks((300, 300), [(150, 100), (150, 190), (245, 100)], 40)
    image = np.where(left | right | below, 200, 0).astype(np.uint8)
    label = (left & (np.arange(300)[:, None] < 150)) | (right & (np.arange(300)[None] < 200))
    predictor = WindowPredictor(FloodNet(), local_corrections=True)
    predictor.set_image(image)
    predictor.predict([Click(100, 100, True)])
    assert not predictor.get_state().refining  # started from a click: the network's mask
    predictor.reset()
    clicks = [Click(175, 100, True)]
    predictor.predict(clicks, prev_mask=label.astype(np.float32))
    state = predictor.get_state()
    assert state.refining
    predictor.reset()
    predictor.set_state(state)  # undo back to the first correction
    mask = predictor.predict([*clicks, Click(245, 100, True)]) > 0.5
    assert mask[below].mean() > 0.98
    assert mask[right & label].mean() > 0.98  # the second click is a local one too
