"""Objects from points in napari: opened from the plugin menu, layers chosen in its boxes, the
button pressed; the objects arrive in one undo step, painted pixels are kept, Stop works."""
from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt

from _fakes import DiskPredictor
from napari_ritm._qt import points_widget


def _open(viewer, qtbot, monkeypatch, predictor=None):
    monkeypatch.setattr(points_widget, "_load_predictor", lambda model: predictor or
                        DiskPredictor(radius=8))
    _, widget = viewer.window.add_plugin_dock_widget("napari-ritm", "Objects from points")
    return widget


def _press(qtbot, widget):
    qtbot.mouseClick(widget.run_button.native, Qt.MouseButton.LeftButton)


def _scene(viewer):
    image = np.full((40, 60), 10, np.uint16)
    for c0 in (5, 25, 45):
        image[10:20, c0:c0 + 10] = 3000
    viewer.add_image(image, name="cells")
    painted = np.zeros((40, 60), np.int32)
    painted[10:20, 45:55] = 3  # one cell already done
    labels = viewer.add_labels(painted, name="mine")
    points = viewer.add_points([[15, 10], [15, 30], [15, 50], [90, 90]], name="seeds")
    return labels, points


def test_points_become_objects_in_one_undo_step(make_napari_viewer, qtbot, monkeypatch):
    viewer = make_napari_viewer()
    labels, points = _scene(viewer)
    widget = _open(viewer, qtbot, monkeypatch)
    assert widget.points_box.value is points and widget.labels_box.value is labels  # chosen for you
    assert widget.image_box.value.name == "cells"
    before = labels.data.copy()
    _press(qtbot, widget)
    assert widget.run_button.text == "Stop"
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30000)
    data = labels.data
    assert (data[10:20, 5:15] == 4).all() and (data[10:20, 25:35] == 5).all()
    assert (data[10:20, 45:55] == 3).all()  # the painted cell is untouched
    text = widget.status.value
    assert "2 object(s) made" in text and "already had a label" in text and "outside" in text
    assert widget.run_button.text == "Make objects"
    labels.undo()
    np.testing.assert_array_equal(labels.data, before)


def test_wrong_layers_say_why(make_napari_viewer, qtbot, monkeypatch):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((3, 20, 20), np.uint8), name="stack")
    viewer.add_labels(np.zeros((3, 20, 20), np.int32), name="objects")
    viewer.add_points(np.zeros((0, 2)), name="flat")
    widget = _open(viewer, qtbot, monkeypatch)
    _press(qtbot, widget)
    assert "2 dimensions" in widget.status.value and widget.worker is None


def test_stop_keeps_the_objects_made_so_far(make_napari_viewer, qtbot, monkeypatch):
    class Stopper(DiskPredictor):
        def predict(self, clicks, prev_mask=None):
            widget._stop = True  # as if Stop were pressed while the first point runs
            return super().predict(clicks, prev_mask)

    viewer = make_napari_viewer()
    labels, _ = _scene(viewer)
    widget = _open(viewer, qtbot, monkeypatch, Stopper(radius=8))
    _press(qtbot, widget)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30000)
    assert (labels.data[10:20, 5:15] == 4).all() and not (labels.data == 5).any()
    assert "1 object(s) made" in widget.status.value and "stopped early" in widget.status.value
