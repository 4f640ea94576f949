"""Proofreading headless: split a merged label, merge, delete, and the order in which to check."""
from __future__ import annotations

import numpy as np

from _fakes import DiskPredictor
from napari_ritm.inference.clicks import innermost_pixel
from napari_ritm.session import Session
from napari_ritm.session.proofread import Proofreading, check_order, split_off
from napari_ritm.session.replay import replay


def _two_cells():
    image = np.zeros((40, 60), np.uint8)
    image[10:30, 5:25] = 200
    image[10:30, 35:55] = 200
    labels = np.zeros((40, 60), np.uint16)
    labels[10:30, 5:55] = 4  # one label over both cells and the gap between them
    return image, labels


def test_split_gives_the_rest_of_a_merged_label_a_new_id_in_one_write():
    image, labels = _two_cells()
    session = Session(image, labels, predictor=DiskPredictor(radius=15), threshold=0.8)
    before = labels.copy()
    assert session.refine(4)
    session.click(20, 15, True)  # the disk predictor keeps the bright part near the click
    session.click(20, 45, False)
    session.run_pending()
    writes = session.labels.undo_steps
    text = Proofreading(session).split()
    assert "label 5" in text and session.labels.undo_steps == writes + 1
    assert (labels[10:30, 5:25] == 4).all()
    assert (labels[before == 4] != 0).all()  # no pixel of the old label lost
    assert set(np.unique(labels[10:30, 35:55])) == {5}
    session.labels.undo()
    np.testing.assert_array_equal(labels, before)


def test_split_gives_the_new_id_to_the_largest_part_and_small_pieces_keep_the_label():
    image, labels = _two_cells()
    labels[30, 5:25] = 4  # a sliver under the left cell, outside what the fake predicts
    session = Session(image, labels, predictor=DiskPredictor(radius=15), threshold=0.8)
    before = labels.copy()
    session.refine(4)
    session.click(20, 15, True)
    session.click(20, 45, False)
    session.run_pending()
    text = Proofreading(session).split()
    # label 5: the right cell and the gap, one part; the sliver is not torn off into it
    assert (labels[10:30, 25:55] == 5).all() and np.count_nonzero(labels == 5) == 20 * 30
    assert (labels[30, 5:25] == 4).all()
    assert "20 px of small pieces" in text and (labels[before == 4] != 0).all()


def test_split_off_is_the_largest_connected_part_outside_the_mask():
    had = np.zeros((10, 20), bool)
    had[2:8, 1:19] = True
    mask = np.zeros_like(had)
    mask[2:8, 1:8] = True
    mask[2:8, 12:14] = True  # cuts the rest in two: 4 columns and 5 columns wide
    other = split_off(had, mask)
    assert other.sum() == 6 * 5 and other[2:8, 14:19].all()
    assert not split_off(had, had).any()


def test_split_without_a_refined_label_says_what_to_do():
    image, labels = _two_cells()
    session = Session(image, labels, predictor=DiskPredictor())
    assert "refine the merged label first" in Proofreading(session).split()


def test_merge_and_delete_touch_every_slice_in_one_write():
    labels = np.zeros((3, 20, 20), np.uint16)
    labels[:, 2:8, 2:8] = 1
    labels[1:, 10:16, 10:16] = 2
    session = Session(np.zeros((3, 20, 20), np.uint8) + 1, labels, predictor=DiskPredictor())
    proof = Proofreading(session)
    assert "Merged label 2 into label 1 (72" in proof.merge(1, 2)
    assert set(np.unique(labels)) == {0, 1} and session.labels.undo_steps == 1
    assert "Deleted label 1" in proof.delete(1)
    assert not labels.any()
    session.labels.undo()
    session.labels.undo()
    assert (labels[1:, 10:16, 10:16] == 2).all() and (labels[:, 2:8, 2:8] == 1).all()
    assert "different labels" in proof.merge(1, 1) and "no label" in proof.delete(0)


def test_check_order_puts_the_labels_the_model_disagrees_with_first():
    image, _ = _two_cells()
    image[5:8, 40:50] = 200
    labels = np.zeros((40, 60), np.int32)
    labels[10:30, 5:25] = 1  # right
    labels[10:30, 35:55] = 2  # right
    labels[4:9, 38:52] = 3  # a bright strip, labelled too large
    labels[32:39, 40:52] = 4  # dark background, labelled as an object
    checks = check_order(DiskPredictor(radius=12), labels, image.astype(np.float32)[..., None]
                         .repeat(3, 2) / 255)
    assert [c.label for c in checks][:2] == [4, 3]
    assert checks[-1].agreement > 0.9 and checks[0].agreement < 0.1
    assert innermost_pixel(labels == 1) == (19, 14)


def test_a_record_replays_splits_merges_and_deletes(tmp_path):
    image, labels = _two_cells()
    labels[35:38, 2:6] = 9
    labels[35:38, 10:14] = 8
    start = labels.copy()
    session = Session(image, labels, predictor=DiskPredictor(radius=15), threshold=0.8)
    session.refine(4)
    session.click(20, 15, True)
    session.click(20, 45, False)
    session.run_pending()
    proof = Proofreading(session)
    proof.split()
    proof.merge(8, 9)
    proof.delete(5)
    session.save_record(tmp_path / "r.json")
    again = replay(tmp_path / "r.json", image, start.copy(),
                   predictor_for=lambda entry: DiskPredictor(radius=15))
    assert again.exact and np.array_equal(again.labels, labels)
