"""The dock widget in a real napari viewer under Xvfb (pytest-xvfb): clicks -> mask -> labels."""
from __future__ import annotations

import json

import numpy as np
import pytest
from napari.utils._test_utils import read_only_mouse_event
from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

from _fakes import DiskPredictor
from napari_ritm._qt.widget import RITMWidget
from napari_ritm.inference.window import WindowPredictor

WIDGET = "RITM segmentation"
FAKE_CHECKPOINT = "checkpoints/fake_coco_lvis_h18s_itermask.pth"


def mouse_click(viewer, world, *, button=1, modifiers=(), drag=(0, 0)):
    """Press and release at world position ``world`` on the canvas, dispatched as napari's canvas
    does: to the viewer's callbacks, then to the selected layer's (``drag``: canvas pixels moved
    between press and release)."""
    for kind, callbacks, pos in (("mouse_press", mouse_press_callbacks, np.zeros(2)),
                                 ("mouse_release", mouse_release_callbacks,
                                  np.asarray(drag, dtype=float))):
        event = read_only_mouse_event(type=kind, button=button, position=tuple(world),
                                      modifiers=list(modifiers), pos=pos)
        callbacks(viewer, event)
        if viewer.layers.selection.active is not None:
            callbacks(viewer.layers.selection.active, event)


def open_widget(viewer, qtbot, predictor=None) -> RITMWidget:
    _, widget = viewer.window.add_plugin_dock_widget("napari-ritm", WIDGET)
    qtbot.waitUntil(lambda: not widget.models.loading, timeout=120000)  # "default" is tried
    if predictor is not None:
        widget.models.set_predictor(predictor)
    return widget


def choose_model(widget, qtbot, name: str, *, loaded: bool = True) -> None:
    """Choose model ``name`` (the item's data) in the Model box as the user does (open the
    list, click the item) and wait until it is in use (``loaded``) or loading ended."""
    from qtpy.QtCore import Qt

    combo = widget.model_combo
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible, timeout=10000)
    index = view.model().index(combo.findData(name), 0)
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(index).center())
    qtbot.waitUntil(lambda: not widget.models.loading
                    and (widget.models.model_name == name or not loaded), timeout=120000)


def wait_idle(widget, qtbot, timeout=120000):
    qtbot.waitUntil(lambda: widget.idle, timeout=timeout)


def blob_image(shape, box):
    image = np.full(shape, 10, np.uint16)
    r0, r1, c0, c1 = box
    image[..., r0:r1, c0:c1] = 3000
    return image


def test_click_finish_and_napari_undo(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((48, 64), (10, 30, 10, 40)), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor(radius=4))
    assert "default" in widget.status.text() or widget.models.net is not None
    labels = widget.labels_layer
    assert labels.name == "cells labels" and labels.data.shape == (48, 64)
    assert viewer.layers.selection.active == widget.clicks_layer

    mouse_click(viewer, (20, 20))
    mouse_click(viewer, (20, 32))  # queued while the first is predicted
    mouse_click(viewer, (20, 30), button=2)  # right click: negative
    mouse_click(viewer, (5, 5), drag=(30, 0))  # a drag pans: no click
    wait_idle(widget, qtbot)
    assert widget.session.predictor.predict_calls == 3
    assert len(widget.clicks_layer.data) == 3
    colors = widget.clicks_layer.border_color  # hollow rings: green, red
    assert colors[0][1] > 0.5 and colors[2][0] > 0.9 and colors[2][1] < 0.1
    assert (widget.clicks_layer.face_color[:, 3] == 0).all()
    preview = widget.preview_layer.data
    assert preview[20, 20] == 1 and preview[20, 30] == 0 and preview[20, 35] == 1
    assert preview[40, 60] == 0

    widget.threshold_slider.setValue(95)  # live, no prediction
    assert not widget.preview_layer.data.any()
    widget.threshold_slider.setValue(49)
    assert widget.session.predictor.predict_calls == 3

    widget.finish()
    wait_idle(widget, qtbot)
    assert labels.data[20, 20] == 1 and labels.data[20, 30] == 0
    assert len(widget.clicks_layer.data) == 0 and not widget.preview_layer.data.any()
    assert labels.selected_label == 1
    labels.undo()  # napari's own undo removes the committed object
    assert not labels.data.any()


def press(viewer, key):
    """A key press and release as the canvas dispatches it (the selected layer's keymap first,
    then the viewer's), through napari's key-map handler."""
    handler = viewer.window._qt_viewer._key_map_handler
    handler.press_key(key)
    handler.release_key(key)


def test_keyboard_shortcuts_and_ctrl_click(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    mouse_click(viewer, (20, 20))
    mouse_click(viewer, (22, 22), modifiers=["Control"])  # Ctrl+click: negative
    wait_idle(widget, qtbot)
    assert [c.positive for c in widget.session.clicks] == [True, False]
    viewer.layers.selection.active = viewer.layers["cells"]  # keys work with any layer selected
    press(viewer, "Control-Z")
    wait_idle(widget, qtbot)
    assert len(widget.session.clicks) == 1
    press(viewer, "Space")  # napari's hold-to-pan: not ours
    assert len(widget.session.clicks) == 1 and not widget.labels_layer.data.any()
    press(viewer, "N")  # finish
    wait_idle(widget, qtbot)
    assert widget.labels_layer.data[20, 20] == 1
    press(viewer, "Control-Z")  # no click left: first says what a second Undo would undo
    assert widget.labels_layer.data[20, 20] == 1 and "label 1" in widget.status.text()
    press(viewer, "Control-Z")  # the second: napari's undo of the labels layer
    assert not widget.labels_layer.data.any() and "Undid" in widget.status.text()
    press(viewer, "Control-Shift-Z")
    assert widget.labels_layer.data[20, 20] == 1
    mouse_click(viewer, (20, 20))
    wait_idle(widget, qtbot)
    press(viewer, "Escape")
    assert widget.session.clicks == () and not widget.preview_layer.data.any()
    mouse_click(viewer, (30, 30))
    wait_idle(widget, qtbot)
    press(viewer, "Enter")  # finish, too
    wait_idle(widget, qtbot)
    assert widget.labels_layer.data[30, 30] == 2


def test_world_coordinates_with_scale_and_translate(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 50), (10, 30, 10, 40)), scale=(0.5, 0.25),
                     translate=(100, -20))
    widget = open_widget(viewer, qtbot, DiskPredictor(radius=2))
    assert tuple(widget.labels_layer.scale) == (0.5, 0.25)
    mouse_click(viewer, (100 + 20 * 0.5, -20 + 25 * 0.25))  # pixel (20, 25)
    wait_idle(widget, qtbot)
    assert widget.session.clicks[0].y == 20 and widget.session.clicks[0].x == 25
    assert widget.preview_layer.data[20, 25] == 1


def test_mismatching_labels_layer_is_refused(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="img")
    viewer.add_labels(np.zeros((30, 40), np.uint16), name="other")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    widget.labels_combo.setCurrentText("other")
    assert widget.session is None and "shape" in widget.status.text()
    viewer.add_labels(np.zeros((40, 40), np.uint16), name="scaled", scale=(2, 2))
    widget.labels_combo.setCurrentText("scaled")
    assert widget.session is None and "scale" in widget.status.text()


def test_removing_the_labels_layer_mid_prediction_resets(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="img")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    labels = widget.labels_layer
    mouse_click(viewer, (20, 20))
    widget.finish()
    viewer.layers.remove(labels)  # before the prediction came back
    qtbot.waitUntil(lambda: "removed" in widget.status.text())
    wait_idle(widget, qtbot)
    assert not labels.data.any()  # nothing half-written
    assert widget.session is None and widget.clicks_layer is None
    # the state line no longer shows the old object, and a canvas click says what to do
    assert "Choose" in widget.state_label.text()
    viewer.layers.selection.active = viewer.layers["img"]
    mouse_click(viewer, (20, 20))
    assert "choose the image and labels layers" in widget.status.text()
    # choosing the same image again (as the user does: the box's item) starts a new session
    widget.image_combo.activated.emit(widget.image_combo.currentIndex())
    assert widget.session is not None and widget.labels_layer is not labels


def test_shortcuts_from_the_users_keys_file(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """keys.json replaces an action's keys (here Finish: F instead of N and Enter) and the
    dock says the shortcuts came from it."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"finish": "F", "no_such_action": "X"}))
    monkeypatch.setenv("NAPARI_RITM_KEYS", str(keys))
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    from napari.utils.notifications import notification_manager

    told = [n.message for n in notification_manager.records]
    assert f"shortcuts from {keys} (skipped: no_such_action)" in told
    assert widget.finish_button.text() == "Finish object [F]"
    mouse_click(viewer, (20, 20))
    wait_idle(widget, qtbot)
    press(viewer, "N")  # no longer Finish
    assert not widget.labels_layer.data.any()
    press(viewer, "F")
    wait_idle(widget, qtbot)
    assert widget.labels_layer.data[20, 20] == 1


def test_refine_and_propagate_through_a_stack(make_napari_viewer, qtbot):
    from qtpy.QtCore import Qt

    viewer = make_napari_viewer()
    stack = np.full((7, 32, 32), 10, np.uint16)
    stack[1:5, 8:24, 8:24] = 3000  # the object lives on slices 1..4
    stack[5:, 0, 0] = 20  # keep the other slices non-constant
    stack[0, 0, 0] = 20
    viewer.add_image(stack, name="stack")
    painted = np.zeros(stack.shape, np.uint16)
    painted[2, 10:14, 10:14] = 5  # a rough label to refine (e.g. from a threshold)
    painted[2, 28:31, 28:31] = 9  # another label that must stay untouched
    viewer.add_labels(painted.copy(), name="cellpose")
    widget = open_widget(viewer, qtbot, DiskPredictor(radius=5))
    widget.labels_combo.setCurrentText("cellpose")
    labels = widget.labels_layer
    viewer.dims.set_current_step(0, 2)
    assert widget.session.key == (2,)
    labels.selected_label = 5
    qtbot.mouseClick(widget.refine_selected_button, Qt.MouseButton.LeftButton)
    mouse_click(viewer, (2, 20, 20))
    wait_idle(widget, qtbot)
    qtbot.mouseClick(widget.finish_button, Qt.MouseButton.LeftButton)
    wait_idle(widget, qtbot)
    assert labels.data[2, 20, 20] == 5 and labels.data[2, 12, 12] == 5
    np.testing.assert_array_equal(labels.data == 9, painted == 9)

    press(viewer, "PageUp")  # carries label 5, the object finished last, up the stack
    wait_idle(widget, qtbot)
    assert {z for z in range(7) if (labels.data[z] == 5).any()} == {2, 3, 4}
    qtbot.mouseClick(widget.down_button, Qt.MouseButton.LeftButton)
    wait_idle(widget, qtbot)
    assert {z for z in range(7) if (labels.data[z] == 5).any()} == {1, 2, 3, 4}
    np.testing.assert_array_equal(labels.data == 9, painted == 9)
    labels.undo()  # each propagated slice is one undo step
    assert not (labels.data[1] == 5).any() and (labels.data[3] == 5).any()


def test_mirror_averaging_box_is_on_in_the_window_mode_and_a_click_turns_it_off(
    make_napari_viewer, qtbot
):
    pytest.importorskip("torch")
    from qtpy.QtCore import QPoint, Qt

    viewer = make_napari_viewer()
    viewer.add_image(blob_image((64, 80), (16, 48, 20, 60)), name="img")
    widget = open_widget(viewer, qtbot)
    assert widget.models.mode == "window"
    assert widget.flip_check.isChecked() and widget.models.predictor.flip is True
    box = QPoint(6, widget.flip_check.height() // 2)  # on the tick box itself
    qtbot.mouseClick(widget.flip_check, Qt.MouseButton.LeftButton, pos=box)
    assert not widget.flip_check.isChecked() and widget.models.predictor.flip is False
    mouse_click(viewer, (32, 40))  # the unmirrored predictor segments the clicked blob
    wait_idle(widget, qtbot)
    assert widget.session.probs is not None and widget.session.probs[32, 40] > 0.5
    qtbot.mouseClick(widget.flip_check, Qt.MouseButton.LeftButton, pos=box)
    assert widget.flip_check.isChecked() and widget.models.predictor.flip is True


def test_real_predictor_on_the_fake_checkpoint(make_napari_viewer, qtbot, ref_dir):
    pytest.importorskip("torch")
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((64, 80), (16, 48, 20, 60)), name="img")
    widget = open_widget(viewer, qtbot)
    assert widget.models.net is not None  # the shipped model
    assert "Model Microscopy: nuclei, cells, EM (built in) ready" in widget.status.text()
    assert widget.models.mode == "window"  # the default: one window per pass
    assert isinstance(widget.models.predictor, WindowPredictor)
    assert not widget.zoom_check.isEnabled()
    assert widget.models.predictor.model.channels_last
    widget.models.load_model(ref_dir / FAKE_CHECKPOINT)
    qtbot.waitUntil(lambda: "fake_coco_lvis_h18s_itermask.pth ready" in widget.status.text(),
                    timeout=60000)
    mouse_click(viewer, (32, 40))
    wait_idle(widget, qtbot, timeout=60000)
    assert widget.session.probs is not None and widget.session.probs.shape == (64, 80)
    widget.models.set_mode("exact")
    exact_network = widget.models.predictor.model
    assert not exact_network.channels_last  # random weights fail the probe: arithmetic kept
    assert widget.zoom_check.isEnabled() and widget.flip_check.isChecked()
    widget.flip_check.setChecked(False)  # a new predictor, same model and inference copy
    assert widget.models.predictor.flip is False and widget.models.predictor.zoom.target_size == 400
    assert widget.models.predictor.model is exact_network
    widget.models.set_mode("fast")
    assert widget.models.predictor.zoom.target_size == 256 and not widget.flip_check.isChecked()
    assert widget.models.predictor.model.channels_last
    widget.models.set_mode("exact")  # the mode's flip default comes back
    assert widget.flip_check.isChecked() and widget.models.predictor.flip is True
    widget.flip_check.setChecked(False)
    mouse_click(viewer, (20, 30), button=2)
    wait_idle(widget, qtbot, timeout=60000)
    preview = widget.session.preview
    widget.finish()
    wait_idle(widget, qtbot)
    np.testing.assert_array_equal(widget.labels_layer.data == 1, preview)


def test_sample_data_rgb_and_switching_image_mid_object(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-ritm", "nuclei2d")
    viewer.open_sample("napari-ritm", "ihc")
    assert viewer.layers["nuclei2d"].data.dtype == np.uint16 and viewer.layers["ihc"].rgb
    widget = open_widget(viewer, qtbot, DiskPredictor())
    widget.image_combo.setCurrentText("ihc")
    ihc_labels = widget.labels_layer
    assert ihc_labels.data.shape == (512, 512)
    mouse_click(viewer, (100, 100))
    wait_idle(widget, qtbot)
    assert widget.session.image.rgb and widget.session.predictor.predict_calls == 1
    widget.image_combo.setCurrentText("nuclei2d")  # the object in progress is discarded
    assert "discarded" in widget.status.text() or "Layers changed" in widget.status.text()
    assert not ihc_labels.data.any()
    assert widget.session.image.data is viewer.layers["nuclei2d"].data


class SlowDiskPredictor(DiskPredictor):
    def predict(self, clicks, prev_mask=None):
        import time

        time.sleep(0.05)
        return super().predict(clicks, prev_mask)


def test_stop_cancels_a_running_propagation(make_napari_viewer, qtbot):
    """The Stop button ends a propagation; while it runs, napari's activity dock counts the
    slices as the widget's bar does."""
    from napari.utils import progress

    viewer = make_napari_viewer()
    stack = np.full((40, 24, 24), 10, np.uint16)
    stack[:, 4:20, 4:20] = 3000  # the object goes through the whole stack
    viewer.add_image(stack)
    widget = open_widget(viewer, qtbot, SlowDiskPredictor())
    viewer.dims.set_current_step(0, 0)
    mouse_click(viewer, (0, 12, 12))
    wait_idle(widget, qtbot)
    widget.propagate(1)
    assert not widget.progress.isHidden() and widget.stop_button.isEnabled()
    qtbot.waitUntil(lambda: widget.progress.value() >= 2, timeout=120000)
    (activity,) = [bar for bar in progress._all_instances if "propagating" in bar.desc]
    assert activity.total == widget.progress.maximum() and activity.n >= 2  # napari's dock too
    widget.stop_button.click()
    wait_idle(widget, qtbot)
    done = sum(bool(widget.labels_layer.data[z].any()) for z in range(40))
    assert 3 <= done < 40 and "stopped by you" in widget.status.text()
    assert not widget.stop_button.isEnabled()
    assert not any("napari-ritm" in bar.desc for bar in progress._all_instances)
