"""Objects from points, headless: one object per point, skips counted, written in one undo step
only where nobody painted since."""
from __future__ import annotations

import numpy as np
from napari.layers import Labels

from _fakes import DiskPredictor
from napari_ritm.inference.planes import ImageSource
from napari_ritm.session.points import objects_from_points


def bright_boxes(shape, boxes):
    image = np.full(shape, 20, dtype=np.uint8)
    for r0, r1, c0, c1 in boxes:
        image[..., r0:r1, c0:c1] = 200
    return image


def test_one_object_per_point_and_every_skip_counted():
    image = bright_boxes((40, 40), [(2, 8, 2, 8), (2, 8, 20, 26), (20, 26, 2, 8)])
    painted = np.zeros((40, 40), np.int32)
    painted[20:26, 2:8] = 9  # the third box is already labelled
    points = [((), 5, 5), ((), 5, 23), ((), 23, 5), ((), -3, 5), ((), 35, 35), ((), 5.2, 4.8)]
    seen = []
    result = objects_from_points(ImageSource(image), painted, points, DiskPredictor(radius=6),
                                 on_progress=lambda done, total: seen.append((done, total)))
    assert result.objects == [10, 11]  # ids after the highest existing one
    assert (result.labelled, result.outside, result.empty) == (2, 1, 1)  # the 6th point: box 1
    assert seen[-1] == (6, 6) and not result.stopped
    assert not painted[:8].any()  # the input is never modified
    layer = Labels(painted.copy())
    written, kept = result.writes.apply(layer)
    assert kept == 0 and written == 2 * 36 == result.writes.count
    assert (layer.data[2:8, 2:8] == 10).all() and (layer.data[2:8, 20:26] == 11).all()
    assert (layer.data[20:26, 2:8] == 9).all()
    assert "2 object(s) made" in result.summary() and "outside the image" in result.summary()
    layer.undo()  # one undo step takes all of it back
    np.testing.assert_array_equal(layer.data, painted)


def test_pixels_painted_while_it_ran_are_kept():
    image = bright_boxes((24, 24), [(2, 12, 2, 12)])
    result = objects_from_points(ImageSource(image), np.zeros((24, 24), np.uint8),
                                 [((), 6, 6)], DiskPredictor(radius=8))
    layer = Labels(np.zeros((24, 24), np.uint8))
    layer.data[2:4, 2:12] = 5  # the user painted here meanwhile
    written, kept = result.writes.apply(layer)
    assert kept == 20 and written == 80
    assert (layer.data[2:4, 2:12] == 5).all() and (layer.data[4:12, 2:12] == 1).all()


def test_points_in_a_stack_land_on_their_planes_and_stop_is_honoured():
    image = bright_boxes((3, 20, 20), [(4, 10, 4, 10)])
    labels = np.zeros((3, 20, 20), np.uint16)
    points = [((0,), 6, 6), ((2,), 6, 6), ((1,), 6, 6), ((5,), 6, 6)]
    result = objects_from_points(ImageSource(image), labels, points, DiskPredictor(radius=5))
    assert result.objects == [1, 2, 3] and result.outside == 1
    layer = Labels(labels.copy())
    result.writes.apply(layer)
    assert [int(layer.data[z, 6, 6]) for z in range(3)] == [1, 3, 2]
    calls = iter([False, True])
    stopped = objects_from_points(ImageSource(image), labels, points, DiskPredictor(radius=5),
                                  should_stop=lambda: next(calls))
    assert stopped.stopped and stopped.objects == [1]
