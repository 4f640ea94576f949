"""Issue 36 in the dock: the whole object from one slice, and a correction carried through the
stack in one undo step, driven with clicks and keys."""
from __future__ import annotations

import numpy as np

from _fakes import DiskPredictor
from test_widget import mouse_click, open_widget, press, wait_idle


def test_whole_object_then_a_correction_carried_through_the_stack(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = np.full((8, 24, 24), 20, np.uint16)
    image[:, 0, 0] = 25  # no slice is constant
    image[2:6, 6:18, 6:18] = 3000  # the object lives on slices 2..5
    viewer.add_image(image, name="stack")
    widget = open_widget(viewer, qtbot, DiskPredictor(radius=4))
    widget.session.stacks.stop_rule = "area<10 or >3x (v1)"  # the fake's masks are not the model's
    labels = widget.labels_layer
    viewer.dims.set_point(0, 3)
    mouse_click(viewer, (3, 12, 12))
    wait_idle(widget, qtbot)
    press(viewer, "Shift-W")  # the whole object
    wait_idle(widget, qtbot)
    assert {z for z in range(8) if (labels.data[z] == 1).any()} == {2, 3, 4, 5}
    assert "up" in widget.status.text() and "down" in widget.status.text()
    before = labels.data.copy()
    viewer.dims.set_point(0, 4)
    mouse_click(viewer, (4, 12, 16))  # on the propagated object: a correction
    wait_idle(widget, qtbot)
    assert "Correcting label 1" in widget.status.text() or widget.session.object_id == 1
    press(viewer, "N")  # finish: the correction is carried on
    wait_idle(widget, qtbot)
    assert labels.data[4, 12, 17] == 1 and labels.data[5, 12, 17] == 1
    assert "changed slice 5" in widget.status.text()
    assert (labels.data[3] == before[3]).all()  # the slice the user segmented is kept
    labels.undo()  # the re-propagation, in one step
    assert labels.data[5, 12, 17] == 0 and labels.data[4, 12, 17] == 1
