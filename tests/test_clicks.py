"""Clicks, the click list and the points-tensor layout the network expects."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from napari_ritm.inference.clicks import Click, ClickList, encode_points


def test_click_is_frozen_and_hashable():
    click = Click(3.5, 4.0, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        click.y = 1.0
    assert {click, Click(3.5, 4.0, True)} == {click}


def test_click_list_append_undo_clear_counts():
    clicks = ClickList([Click(1, 2, True)])
    clicks.append(Click(5, 6, False))
    clicks.append(Click(7, 8, True))
    assert len(clicks) == 3 and (clicks.num_positive, clicks.num_negative) == (2, 1)
    assert [c.y for c in clicks] == [1, 5, 7] and clicks[1] == Click(5, 6, False)
    assert clicks.undo() == Click(7, 8, True)
    assert list(clicks) == [Click(1, 2, True), Click(5, 6, False)]
    clicks.clear()
    assert len(clicks) == 0 and clicks.num_positive == 0
    with pytest.raises(IndexError):
        clicks.undo()


def test_encode_points_positives_first_with_padding_and_indices():
    coords = np.array([[[10.0, 20.0], [30.5, 40.25], [50.0, 60.0], [1.0, 2.0]]])
    points = encode_points(coords, [False, True, False, False], index_offset=1)
    assert points.dtype == np.float32 and points.shape == (1, 6, 3)
    expected = [
        [30.5, 40.25, 2], [-1, -1, -1], [-1, -1, -1],  # positives (N = 3)
        [10, 20, 1], [50, 60, 3], [1, 2, 4],  # negatives in click order
    ]
    np.testing.assert_array_equal(points[0], np.array(expected, dtype=np.float32))


def test_encode_points_batch_and_empty():
    coords = np.array([[[1.0, 2.0]], [[1.0, 7.0]]])
    points = encode_points(coords, [True])
    np.testing.assert_array_equal(points[:, 0], [[1, 2, 0], [1, 7, 0]])
    np.testing.assert_array_equal(points[:, 1], [[-1, -1, -1], [-1, -1, -1]])
    empty = encode_points(np.zeros((1, 0, 2)), [])
    np.testing.assert_array_equal(empty, np.full((1, 2, 3), -1, dtype=np.float32))


def test_encode_points_rounds_float64_once_to_float32():
    y = 400 * (150 - 64) / 201  # the README's example: 171.14427...
    points = encode_points(np.array([[[y, 0.1]]]), [True])
    assert points[0, 0, 0] == np.float32(y) and points[0, 0, 1] == np.float32(0.1)


def test_encode_points_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        encode_points(np.zeros((1, 2, 2)), [True])
