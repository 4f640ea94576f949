"""Issue 39 in the dock: split a merged label, merge two labels, delete one, and Check labels,
driven as a user does (canvas clicks with modifiers, keys, buttons)."""
from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt

from _fakes import DiskPredictor
from test_widget import mouse_click, open_widget, press, wait_idle


def _cells(viewer, qtbot, radius=15):
    image = np.full((40, 70), 10, np.uint16)
    image[10:30, 5:25] = 3000
    image[10:30, 35:55] = 3000
    viewer.add_image(image, name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor(radius=radius))
    return widget, widget.labels_layer


def test_split_a_merged_label_with_a_background_click_and_the_key(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget, labels = _cells(viewer, qtbot)
    labels.data_setitem(tuple(np.nonzero(np.pad(np.ones((20, 50), bool), ((10, 10), (5, 15))))),
                        4)  # one label over both cells
    widget.threshold_slider.setValue(80)  # the fake's clicked disk, not the carried-over mask
    viewer.cursor.position = (20, 15)
    press(viewer, "Shift-E")  # refine it
    mouse_click(viewer, (20, 15))
    mouse_click(viewer, (20, 45), button=2)  # the other cell is background
    wait_idle(widget, qtbot)
    press(viewer, "Shift-S")
    assert (labels.data[10:30, 5:25] == 4).all()
    assert (labels.data[10:30, 35:55] == 5).all() and "label 5" in widget.status.text()
    assert widget.session.object_id is None and not widget.preview_layer.data.any()
    labels.undo()  # one step takes the split back
    assert (labels.data[10:30, 35:55] == 4).all()


def test_merge_with_alt_clicks_and_delete_with_the_key(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget, labels = _cells(viewer, qtbot)
    data = np.zeros(labels.data.shape, labels.data.dtype)
    data[10:30, 5:25], data[10:30, 35:55] = 1, 2
    labels.data_setitem(np.nonzero(data), data[np.nonzero(data)])
    mouse_click(viewer, (20, 15), modifiers=["Alt"])
    assert "label 1 chosen" in widget.status.text() and widget.session.clicks == ()
    mouse_click(viewer, (20, 45), modifiers=["Alt"])
    assert (labels.data[10:30, 35:55] == 1).all() and "Merged label 2 into label 1" in (
        widget.status.text())
    viewer.cursor.position = (20, 40)
    press(viewer, "Shift-D")
    assert not labels.data.any() and "Deleted label 1" in widget.status.text()


def test_check_labels_shows_the_wrong_one_first_and_walks_on(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget, labels = _cells(viewer, qtbot, radius=12)
    data = np.zeros(labels.data.shape, labels.data.dtype)
    data[10:30, 5:25] = 1  # right
    data[10:30, 35:55] = 2  # right
    data[32:39, 40:60] = 3  # dark background labelled as an object: wrong
    labels.data_setitem(np.nonzero(data), data[np.nonzero(data)])
    qtbot.mouseClick(widget.proofread.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.proofread.active, timeout=60000)
    assert widget.session.object_id == 3 and "label 3, 1 of 3" in widget.status.text()
    assert abs(viewer.camera.center[-2] - 35) < 4  # the view is on it
    viewer.cursor.position = (35, 50)
    press(viewer, "Shift-D")  # delete it
    assert not (labels.data == 3).any()
    press(viewer, "Shift-N")  # next: label 1 or 2, kept as it is
    shown = widget.session.object_id
    assert shown in (1, 2) and "2 of 3" in widget.status.text()
    mouse_click(viewer, (20, 15) if shown == 1 else (20, 45))  # a correction, then Finish
    press(viewer, "N")
    wait_idle(widget, qtbot)
    qtbot.waitUntil(lambda: "3 of 3" in widget.status.text())
    press(viewer, "Shift-N")
    assert "done, 3 label(s) checked" in widget.status.text()
    assert not widget.proofread.active
