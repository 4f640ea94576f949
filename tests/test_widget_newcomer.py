"""Issue 37: the defects of a newcomer's hour, each driven as the user met it (layer list, canvas
mouse and keys, layer selection and tool changes)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from _fakes import DiskPredictor
from test_widget import WIDGET, blob_image, mouse_click, open_widget, press, wait_idle

# -- 1. deleting the labels layer -----------------------------------------------------------

REMOVAL_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import napari
    from qtpy.QtCore import QTimer

    how = sys.argv[1]
    viewer = napari.Viewer(show=True)
    viewer.window.add_plugin_dock_widget("napari-ritm", "{widget}")
    image = np.zeros((64, 64), np.uint16)
    image[20:40, 20:40] = 3000
    viewer.add_image(image, name="img")

    def remove():
        labels = viewer.layers["img labels"]
        if how == "button":  # the layer list's delete button, with the layer selected
            viewer.layers.selection.active = labels
            viewer.window._qt_viewer.layerButtons.deleteButton.click()
        else:
            viewer.layers.remove(labels)
        QTimer.singleShot(500, lambda: (print("still alive", flush=True), viewer.close()))

    QTimer.singleShot(1500, remove)
    napari.run()
""").format(widget=WIDGET)


@pytest.mark.parametrize("how", ["button", "remove"])
def test_deleting_the_labels_layer_does_not_crash_napari(how, tmp_path):
    """napari crashed (segfault) when the plugin removed layers and warned inside napari's own
    layer-removed event: run as a process of its own, so a crash fails the test, not the run."""
    script = tmp_path / "remove.py"
    script.write_text(REMOVAL_SCRIPT)
    done = subprocess.run([sys.executable, str(script), how], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "still alive" in done.stdout and "was removed" in done.stdout + done.stderr


# -- 2. the network runs on one thread in the widget's worker threads ------------------------

class ThreadRecorder(DiskPredictor):
    def __init__(self):
        super().__init__()
        self.threads = []

    def predict(self, clicks, prev_mask=None):
        import torch

        self.threads.append(torch.get_num_threads())
        return super().predict(clicks, prev_mask)


def test_worker_threads_run_the_network_on_one_thread(make_napari_viewer, qtbot):
    import torch

    viewer = make_napari_viewer()
    stack = np.full((3, 40, 40), 10, np.uint16)
    stack[:, 5:35, 5:35] = 3000
    viewer.add_image(stack, name="cells")
    recorder = ThreadRecorder()
    widget = open_widget(viewer, qtbot, recorder)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the main thread's setting must not matter (it is per thread)
    try:
        mouse_click(viewer, (1, 20, 20))
        wait_idle(widget, qtbot)
        widget.propagate(1)
        wait_idle(widget, qtbot)
    finally:
        torch.set_num_threads(before)
    assert len(recorder.threads) >= 3 and set(recorder.threads) == {1}


# -- 3. shortcuts with the labels or preview layer selected ----------------------------------

def test_shortcuts_work_with_the_labels_and_preview_layers_selected(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    labels = widget.labels_layer
    for layer in (labels, widget.preview_layer):
        mouse_click(viewer, (20, 20))
        wait_idle(widget, qtbot)
        viewer.layers.selection.active = layer
        press(viewer, "Escape")  # reset
        assert widget.session.clicks == ()
        viewer.layers.selection.active = widget.clicks_layer
        mouse_click(viewer, (20, 20))
        mouse_click(viewer, (25, 25))
        wait_idle(widget, qtbot)
        viewer.layers.selection.active = layer
        press(viewer, "Control-Z")  # the last click, not the labels layer's last change
        wait_idle(widget, qtbot)
        assert len(widget.session.clicks) == 1
        press(viewer, "Enter")  # finish
        wait_idle(widget, qtbot)
        assert labels.data[20, 20] > 0
        viewer.layers.selection.active = widget.clicks_layer
        widget.labels_undo()
    assert not labels.data.any()
    # with no click left, Ctrl+Z on the labels layer is its own undo, at once (a brush stroke)
    labels.selected_label = 5
    labels.data_setitem((np.array([2]), np.array([2])), 5)
    viewer.layers.selection.active = labels
    press(viewer, "Control-Z")
    assert labels.data[2, 2] == 0 and "Undid" in widget.status.text()
    # Shift+E refines the label under the cursor
    mouse_click(viewer, (20, 20))
    widget.finish()
    wait_idle(widget, qtbot)
    viewer.cursor.position = (20, 20)
    viewer.layers.selection.active = labels
    press(viewer, "Shift-E")
    assert widget.session.object_id == labels.data[20, 20] and "Refining" in widget.status.text()
    # while the labels layer draws a polygon, Enter and Escape are the polygon's
    widget.reset()
    labels.mode = "polygon"
    mouse_click(viewer, (30, 30))  # the polygon tool has the canvas: no click for the model
    press(viewer, "Escape")
    press(viewer, "Enter")
    assert widget.session.clicks == () and "Refining" not in widget.state_label.text()
    labels.mode = "pan_zoom"


def test_layer_keys_are_given_back_when_the_session_moves_on(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="a")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    first = widget.labels_layer
    assert first.keymap  # our keys on it
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="b")
    widget.image_combo.setCurrentText("b")
    assert widget.labels_layer is not first and not first.keymap


# -- 5. the clicks layer's own keys ---------------------------------------------------------

def test_select_all_and_delete_on_the_clicks_layer_keep_the_markers(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    mouse_click(viewer, (20, 20))
    mouse_click(viewer, (25, 25), button=2)
    wait_idle(widget, qtbot)
    viewer.layers.selection.active = widget.clicks_layer
    for keys in (["A", "Delete"], ["A", "Backspace"], ["A", "1"]):
        for key in keys:
            press(viewer, key)
        assert len(widget.clicks_layer.data) == 2 and len(widget.session.clicks) == 2
    assert "drawn for you" in widget.status.text()
    widget.clicks_layer.selected_data = {0, 1}  # the layer's own delete button does the same
    widget.clicks_layer.remove_selected()
    assert len(widget.clicks_layer.data) == 2


# -- 6. a tool change after selection ------------------------------------------------------

def test_the_hint_follows_a_tool_change_of_the_selected_layer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    viewer.layers.selection.active = widget.labels_layer
    assert "Clicks now go" not in widget.state_label.text()
    widget.labels_layer.mode = "paint"  # no re-selection
    assert "Clicks now go to the layer 'cells labels' (paint)" in widget.state_label.text()
    widget.labels_layer.mode = "transform"
    assert "(transform)" in widget.state_label.text()
    widget.labels_layer.mode = "pan_zoom"
    assert "Clicks now go" not in widget.state_label.text()


# -- 7. one hot pixel ----------------------------------------------------------------------

def test_a_hot_pixel_does_not_blind_the_model(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = np.full((64, 64), 200, np.uint16)
    image[20:40, 20:40] = 900
    image[3, 3] = 65535  # napari's default display range is now (200, 65535)
    layer = viewer.add_image(image, name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    plane = widget.session.image.windows(()).full()
    assert plane[30, 30, 0] > 0.9 and plane[10, 10, 0] < 0.1  # the nucleus stands out
    assert "The model sees intensities 200 to 900" in widget.status.text()
    layer.contrast_limits = (0, 1800)  # the user's own choice is followed
    plane = widget.session.image.windows(()).full()
    assert plane[30, 30, 0] == pytest.approx(0.5)
    assert "contrast limits" in widget.status.text()


# -- 8. markers ----------------------------------------------------------------------------

def test_markers_leave_small_nuclei_of_the_sample_image_visible(make_napari_viewer, qtbot):
    from napari_ritm._qt.sample_data import nuclei2d

    viewer = make_napari_viewer(show=True)
    data, kwargs, _ = nuclei2d()[0]
    viewer.add_image(data, **kwargs)
    widget = open_widget(viewer, qtbot, DiskPredictor())
    smallest_nucleus = 9  # px, on the sample image
    assert widget.marker_spin.value() < 0.9 * smallest_nucleus * viewer.camera.zoom


# -- 9. messages ---------------------------------------------------------------------------

def test_messages_name_slices_say_what_happened_and_do_not_linger(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((3, 40, 40), (5, 35, 5, 35)), name="stack")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    viewer.dims.set_point(0, 2)
    mouse_click(viewer, (2, 20, 20))
    wait_idle(widget, qtbot)
    widget.finish()
    wait_idle(widget, qtbot)
    assert "on slice 2 (" in widget.status.text() and "(2,)" not in widget.status.text()
    widget.redo()  # nothing was undone
    assert widget.status.text().startswith("Nothing to redo")
    mouse_click(viewer, (2, 10, 10))  # a new action: the old message goes
    assert "Nothing to redo" not in widget.status.text()
    wait_idle(widget, qtbot)
    texts = [widget.mode_combo.itemText(i) for i in range(widget.mode_combo.count())]
    assert texts[0].startswith("around my clicks") and "window" not in " ".join(texts)
    assert widget.flip_check.text() == "Extra accuracy (2× slower)"
    assert widget.model_combo.currentText().startswith("Microscopy")
    assert "coco_lvis" not in " ".join(widget.model_combo.itemText(i)
                                       for i in range(widget.model_combo.count()))


def test_the_adaptation_estimate_counts_from_the_first_training_step():
    from napari_ritm.training.adapt import time_left

    # 200 s of comparison before training, then 1 s per step: 300 steps in a 300 s budget
    assert time_left(1, 300, 0.0, 200.0, 200.0, 300.0) is None
    assert time_left(3, 300, 0.0, 200.0, 202.0, 300.0) == pytest.approx(297 + 200)
    assert time_left(150, 300, 0.0, 200.0, 349.0, 120.0) == pytest.approx(0 + 200)
