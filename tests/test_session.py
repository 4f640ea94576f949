"""The session headless: commit policy, undo, queue, refine, slices, propagate, lazy stacks,
and a seeded randomized property test (>= 2,000 operations) on real napari Labels layers."""
from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Labels

from _fakes import DiskPredictor
from napari_ritm.inference.clicks import innermost_pixel
from napari_ritm.inference.planes import ImageSource
from napari_ritm.session import Session
from napari_ritm.session.editing import (
    LabelDtypeError,
    check_label_fits,
    check_layers_match,
    plan_commit,
)


def bright_image(shape, boxes):
    """uint8 image of ``shape`` with 200 inside each (r0, r1, c0, c1) box on every plane."""
    image = np.full(shape, 20, dtype=np.uint8)
    for r0, r1, c0, c1 in boxes:
        image[..., r0:r1, c0:c1] = 200
    return image


def make_session(image, labels_data, **kwargs):
    labels = Labels(labels_data)
    messages = []
    predictor = kwargs.pop("predictor", DiskPredictor())
    session = Session(ImageSource(image), labels, predictor=predictor, notify=messages.append,
                      **kwargs)
    return session, labels, messages


def test_click_finish_takes_only_background_and_napari_undo_removes_it():
    image = bright_image((32, 32), [(4, 20, 4, 20)])
    painted = np.zeros((32, 32), np.int32)
    painted[10:14, 10:14] = 3  # a label inside the bright object
    session, labels, _ = make_session(image, painted.copy())
    session.click(12, 8, True)
    session.run_pending()
    assert session.predictor.predict_calls == 1
    preview = session.preview
    assert preview[12, 8] and not preview[30, 30] and preview.sum() > 20
    session.finish()
    session.run_pending()
    data = labels.data
    assert set(np.unique(data)) == {0, 3, 4}  # next free id = max + 1
    np.testing.assert_array_equal(data[painted == 3], 3)  # the other label kept every pixel
    np.testing.assert_array_equal(data == 4, preview & (painted == 0))
    assert session.clicks == () and session.preview is None and session.object_id is None
    labels.undo()
    np.testing.assert_array_equal(labels.data, painted)


def test_overwrite_takes_other_labels_pixels():
    image = bright_image((32, 32), [(4, 20, 4, 20)])
    painted = np.zeros((32, 32), np.int32)
    painted[11:13, 9:11] = 2
    session, labels, _ = make_session(image, painted.copy(), overwrite=True)
    session.click(12, 10, True)
    session.finish()
    session.run_pending()
    assert (labels.data[11:13, 9:11] == 3).all()


def test_undo_click_restores_exact_previous_preview_and_queue_order():
    image = bright_image((40, 40), [(2, 38, 2, 38)])
    session, labels, _ = make_session(image, np.zeros((40, 40), np.uint16))
    session.click(10, 10, True)
    session.run_pending()
    first_probs, first_preview = session.probs.copy(), session.preview.copy()
    session.click(25, 25, True)
    session.click(10, 12, False)  # queued behind the first: both are predicted, in order
    assert len(session.clicks) == 3
    session.run_pending()
    assert session.predictor.predict_calls == 3
    assert not session.preview[10, 12] and session.preview[25, 25]
    session.undo()
    session.undo()
    session.run_pending()
    np.testing.assert_array_equal(session.probs, first_probs)
    np.testing.assert_array_equal(session.preview, first_preview)
    assert session.predictor.predict_calls == 3  # undo re-uses the saved state
    session.click(30, 30, True)
    assert session.undo()  # a click still waiting is simply dropped
    session.run_pending()
    assert session.predictor.predict_calls == 3 and len(session.clicks) == 1
    assert not labels.data.any()


def test_threshold_rethresholds_without_predicting():
    image = bright_image((32, 32), [(1, 31, 1, 31)])
    session, _, _ = make_session(image, np.zeros((32, 32), np.uint16))
    session.click(16, 16, True)
    session.run_pending()
    area = session.preview.sum()
    session.set_threshold(0.95)
    assert session.preview.sum() == 0
    session.set_threshold(0.5)
    assert session.preview.sum() == area
    assert session.predictor.predict_calls == 1


def test_refine_changes_only_that_label_and_background():
    image = bright_image((32, 32), [(1, 31, 1, 31)])
    painted = np.zeros((32, 32), np.uint16)
    painted[5:15, 5:15] = 7
    painted[5:15, 15:25] = 8
    session, labels, _ = make_session(image, painted.copy())
    assert session.refine_at(10, 10)
    assert session.object_id == 7
    np.testing.assert_array_equal(session.preview, painted == 7)
    session.click(10, 7, False)  # cut a hole into label 7
    session.click(20, 10, True)  # grow it downwards (into background) and right (label 8)
    session.finish()
    session.run_pending()
    changed = labels.data != painted
    assert changed.any()
    assert np.isin(painted[changed], [0, 7]).all() and np.isin(labels.data[changed], [0, 7]).all()
    np.testing.assert_array_equal(labels.data == 8, painted == 8)
    assert labels.data[10, 7] == 0 and labels.data[20, 10] == 7
    labels.undo()  # refine is one undo step
    np.testing.assert_array_equal(labels.data, painted)


def test_refine_is_refused_while_an_object_has_clicks():
    image = bright_image((16, 16), [(1, 15, 1, 15)])
    painted = np.zeros((16, 16), np.uint16)
    painted[0:3, 0:3] = 1
    session, _, messages = make_session(image, painted)
    session.click(8, 8, True)
    session.run_pending()
    assert not session.refine(1)
    assert "Finish or reset" in messages[-1]
    assert not session.refine_at(8, 8)  # background under the cursor


def test_dtype_too_small_is_a_message_not_a_wraparound():
    image = bright_image((16, 16), [(1, 15, 1, 15)])
    painted = np.zeros((16, 16), np.uint8)
    painted[0, 0] = 255
    session, labels, messages = make_session(image, painted.copy())
    session.click(8, 8, True)
    session.finish()
    session.run_pending()
    np.testing.assert_array_equal(labels.data, painted)  # nothing written
    assert "uint8" in messages[-1] and "256" in messages[-1]
    assert session.preview is not None and len(session.clicks) == 1  # the object is kept
    with pytest.raises(LabelDtypeError):
        check_label_fits(1, np.float32)


def test_plan_commit_policy_table():
    current = np.array([[0, 5, 9, 0]], np.uint16)
    mask = np.array([[True, True, False, False]])
    rows, cols, values = plan_commit(current, mask, 5)
    assert list(zip(cols.tolist(), values.tolist())) == [(0, 5)]
    rows, cols, values = plan_commit(current, mask | [[0, 0, 1, 0]], 9, overwrite=False)
    assert sorted(zip(cols.tolist(), values.tolist())) == [(0, 9)]
    rows, cols, values = plan_commit(current, np.zeros_like(mask), 9)
    assert list(zip(cols.tolist(), values.tolist())) == [(2, 0)]


def test_layers_must_share_a_pixel_grid():
    check_layers_match((4, 8, 8), (4, 8, 8), image_scale=(2, 0.5, 0.5), labels_scale=(2, 0.5, 0.5))
    with pytest.raises(ValueError, match="shape"):
        check_layers_match((8, 8), (4, 8, 8))
    with pytest.raises(ValueError, match="scale"):
        check_layers_match((8, 8), (8, 8), image_scale=(0.5, 0.5), labels_scale=(1, 1))
    with pytest.raises(ValueError, match="translate"):
        check_layers_match((8, 8), (8, 8), image_translate=(0, 3), labels_translate=None)
    with pytest.raises(ValueError, match="shape"):
        Session(ImageSource(np.zeros((8, 8, 3), np.uint8), rgb=True), Labels(np.zeros((8, 9), int)))


def test_read_only_labels_are_reported_not_crashed():
    class ReadOnlyLabels:
        def __init__(self, data):
            self.data = data
            self.data.flags.writeable = False

        def data_setitem(self, indices, value):
            self.data[indices] = value

    image = bright_image((16, 16), [(1, 15, 1, 15)])
    messages = []
    session = Session(ImageSource(image), ReadOnlyLabels(np.zeros((16, 16), np.uint16)),
                      predictor=DiskPredictor(), notify=messages.append)
    session.click(8, 8, True)
    session.finish()
    session.run_pending()
    assert "Not committed" in messages[-1] and "read-only" in messages[-1]


def test_failing_model_resets_cleanly():
    image = bright_image((16, 16), [(1, 15, 1, 15)])
    session, labels, messages = make_session(image, np.zeros((16, 16), np.uint16),
                                             predictor=DiskPredictor(fail=True))
    session.click(8, 8, True)
    session.finish()
    session.run_pending()
    assert "model exploded" in messages[-1]
    assert session.clicks == () and session.preview is None and not labels.data.any()


def test_constant_slice_is_reported():
    image = np.zeros((16, 16), np.uint16)
    session, _, messages = make_session(image, np.zeros((16, 16), np.uint16))
    session.click(8, 8, True)
    session.run_pending()
    assert "constant" in messages[-1] and session.preview is None


def test_clicks_wait_for_the_model():
    image = bright_image((16, 16), [(1, 15, 1, 15)])
    session, _, _ = make_session(image, np.zeros((16, 16), np.uint16), predictor=None)
    session.click(8, 8, True)
    assert session.pump() is None and len(session.clicks) == 1
    session.set_predictor(DiskPredictor())
    session.run_pending()
    assert session.preview[8, 8]


def test_slice_change_commits_and_keeps_the_object_id():
    image = bright_image((3, 24, 24), [(4, 20, 4, 20)])
    session, labels, _ = make_session(image, np.zeros((3, 24, 24), np.uint16))
    session.set_slice((0,))
    session.click(12, 12, True)
    session.run_pending()
    session.set_slice((1,))
    assert session.object_id == 1 and labels.data[0, 12, 12] == 1
    session.click(12, 12, True)
    session.finish()
    session.run_pending()
    assert labels.data[1, 12, 12] == 1 and session.object_id is None
    labels.undo()
    assert labels.data[1].max() == 0 and labels.data[0, 12, 12] == 1


def test_slice_change_during_prediction_drops_the_stale_result():
    image = bright_image((2, 24, 24), [(4, 20, 4, 20)])
    session, labels, messages = make_session(image, np.zeros((2, 24, 24), np.uint16))
    session.click(12, 12, True)
    job = session.pump()
    result = job.run()  # "in a worker thread" while the user moves on
    session.set_slice((1,))
    session.complete(job, result)
    assert "dropped" in messages[-1]
    assert session.preview is None and not labels.data.any() and not session.busy


def _clicked_on_slice_3():
    """A session on a stack whose object lives on slices 2..5, one click on it on slice 3."""
    image = np.full((8, 24, 24), 20, np.uint8)
    image[2:6, 6:18, 6:18] = 200
    session, labels, messages = make_session(image, np.zeros((8, 24, 24), np.uint16))
    session.set_slice((3,))
    session.click(12, 12, True)
    return session, labels, messages


def test_propagate_through_a_stack_one_undo_step_per_slice():
    session, labels, messages = _clicked_on_slice_3()
    session.finish()  # propagate carries the object finished last
    session.run_pending()
    before = labels.data.copy()
    for direction in (1, -1):
        prop = session.stacks.propagate(direction)
        for step in prop.steps():
            session.stacks.apply_step(step)
        session.stacks.end()
    assert "cannot be segmented" in messages[-1]
    object_slices = {z for z in range(8) if (labels.data[z] == 1).any()}
    assert object_slices == {2, 3, 4, 5}
    for _ in range(3):  # slices 4, 5 (up) and 2 (down): one undo step each
        labels.undo()
    np.testing.assert_array_equal(labels.data, before)


def test_time_series_of_stacks_propagates_along_z_only():
    image = np.full((2, 5, 20, 20), 20, np.uint8)
    image[:, 1:4, 5:15, 5:15] = 200
    image[:, :, 0, 0] = 40  # no constant slice
    session, labels, _ = make_session(image, np.zeros(image.shape, np.uint16))
    session.set_slice((1, 2))  # t = 1, z = 2
    session.click(10, 10, True)
    session.run_pending()
    prop = session.stacks.propagate(1)
    for step in prop.steps():
        session.stacks.apply_step(step)
    session.stacks.end()
    written = {(t, z) for t in range(2) for z in range(5) if labels.data[t, z].any()}
    assert written == {(1, 2), (1, 3)}


def test_changing_slice_during_propagation_keeps_it_going():
    image = np.full((6, 20, 20), 200, np.uint8)
    image[:, 0, 0] = 20
    session, labels, messages = make_session(image, np.zeros(image.shape, np.uint16))
    session.click(10, 10, True)
    session.finish()
    session.run_pending()
    prop = session.stacks.propagate(1)
    steps = prop.steps()
    session.stacks.apply_step(next(steps))
    session.set_slice((4,))  # the user scrolls to watch
    for step in steps:
        session.stacks.apply_step(step)
    session.stacks.end()
    assert all(labels.data[z, 10, 10] == 1 for z in range(6))
    assert "Propagated label 1 to 5 slice(s)" in messages[-1]


def test_reset_during_propagation_stops_writing():
    image = np.full((6, 20, 20), 200, np.uint8)
    image[:, 0, 0] = 20
    session, labels, messages = make_session(image, np.zeros(image.shape, np.uint16))
    session.click(10, 10, True)
    session.run_pending()
    prop = session.stacks.propagate(1)
    steps = prop.steps()
    session.stacks.apply_step(next(steps))
    written = labels.data.copy()
    session.reset()
    assert list(steps) == []  # cancelled before the next slice
    session.stacks.end()
    np.testing.assert_array_equal(labels.data, written)
    assert not session.busy and "reset" in messages[-1]


def test_only_the_visible_slice_of_a_lazy_stack_is_read():
    da = pytest.importorskip("dask.array")
    reads = []
    base = bright_image((6, 24, 24), [(4, 20, 4, 20)])

    def block(block_info=None):
        z = block_info[None]["chunk-location"][0]
        reads.append(z)
        return base[z : z + 1]

    lazy = da.map_blocks(block, chunks=((1,) * 6, (24,), (24,)), dtype=np.uint8)
    session, labels, _ = make_session(lazy, np.zeros((6, 24, 24), np.uint16))
    session.set_slice((4,))
    session.click(12, 12, True)
    session.click(14, 14, True)
    session.run_pending()
    assert reads == [4]  # one read for two clicks: the plane is normalised once
    assert session.predictor.images_set == 1


def test_interior_point_is_deepest_pixel():
    mask = np.zeros((10, 20), bool)
    mask[2:9, 1:4] = True
    mask[1:10, 8:19] = True
    assert innermost_pixel(mask) == (5, 12)  # ties: first in row-major order


def test_a_new_predictor_mid_object_carries_on_from_the_current_mask():
    image = bright_image((40, 40), [(2, 38, 2, 38)])
    session, _, _ = make_session(image, np.zeros((40, 40), np.uint16))
    session.click(10, 10, True)
    session.run_pending()
    before = session.preview.copy()
    other = DiskPredictor()
    other.set_state = lambda state: pytest.fail("got the other predictor's state")
    session.set_predictor(other)  # e.g. the user switched mode or model
    session.click(30, 30, True)
    session.run_pending()
    assert other.predict_calls == 1
    assert (session.preview >= before).all() and session.preview[30, 30]  # nothing lost
    session.undo()
    session.run_pending()
    np.testing.assert_array_equal(session.preview, before)


@pytest.mark.parametrize("after", [0, 120], ids=["object ends", "another cell below"])
def test_propagation_stops_where_the_object_ends(after):
    from _fakes import FloodNet
    from napari_ritm.inference.window import WindowPredictor

    image = np.full((8, 64, 64), 20, np.uint8)
    image[:, 0, 0] = 30
    image[0:4, 20:40, 20:40] = 200  # the object: slices 0-3
    image[4:8, 22:42, 22:42] = after  # then nothing, or a dimmer cell at the same place
    session, labels, messages = make_session(image, np.zeros(image.shape, np.uint16),
                                             predictor=WindowPredictor(FloodNet()))
    session.set_slice((1,))
    session.click(30, 30, True)
    session.finish()
    session.run_pending()
    prop = session.stacks.propagate(1)
    for step in prop.steps():
        session.stacks.apply_step(step)
    session.stacks.end()
    assert {z for z in range(8) if labels.data[z].any()} == {1, 2, 3}
    assert "ended at slice 4 (" in messages[-1]


def _propagated_object():
    session, labels, messages = _clicked_on_slice_3()
    session.run_pending()
    run = session.stacks.propagate_both()  # the whole object: finish here, then up and down
    for step in run.steps():
        session.stacks.apply_step(step)
    session.stacks.end()
    return session, labels, messages


def test_the_whole_object_action_propagates_both_ways():
    session, labels, messages = _propagated_object()
    assert {z for z in range(8) if (labels.data[z] == 1).any()} == {2, 3, 4, 5}
    assert "slice(s) up" in messages[-1] and "slice(s) down" in messages[-1]
    assert session.object_id is None  # a click starts a new object


def test_a_correction_on_a_propagated_slice_is_carried_on_in_one_undo_step():
    session, labels, messages = _propagated_object()
    session.stacks.stop_rule = "area<10 or >3x (v1)"  # the fake's grown mask is not the model's
    session.set_slice((4,))
    session.click(12, 16, True)  # on the propagated object (a disk of radius 4): corrects it
    assert session.object_id == 1 and "Correcting label 1" in messages[-1]
    session.finish()
    session.run_pending()
    assert labels.data[4, 12, 17] == 1 and labels.data[5, 12, 17] == 0  # grown on slice 4
    assert session.stacks.wants_repropagation
    before = labels.data.copy()
    run = session.stacks.repropagate()
    for step in run.steps():
        session.stacks.apply_step(step)
    np.testing.assert_array_equal(labels.data, before)  # written at the end, in one go
    session.stacks.end()
    assert labels.data[5, 12, 17] == 1 and labels.data[5, 12, 12] == 1  # carried up
    assert (labels.data[3] == before[3]).all()  # slice 3 is the user's own: never replaced
    assert "changed slice 5" in messages[-1] and "your own correction" in messages[-1]
    labels.undo()  # one step takes the re-propagation back
    np.testing.assert_array_equal(labels.data, before)
