"""Issue 17 in the widget: every control explains itself, a busy bar while the model works,
click markers of a fixed screen size, a failed download that keeps the working model, and a
channel picker for multichannel images."""
from __future__ import annotations

import numpy as np

from _fakes import DiskPredictor
from test_widget import blob_image, choose_model, mouse_click, open_widget, wait_idle


class SlowDiskPredictor(DiskPredictor):
    def predict(self, clicks, prev_mask=None):
        import time

        time.sleep(0.3)
        return super().predict(clicks, prev_mask)


def test_every_control_has_a_tooltip_and_the_state_is_shown(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    missing = [type(c).__name__ + " " + getattr(c, "text", lambda: "")()
               for c in widget.controls() if len(c.toolTip()) < 15]
    assert missing == []
    assert "Flip" not in widget.flip_check.text() and "TTA" not in widget.flip_check.text()
    assert "No object in progress" in widget.state_label.text()
    mouse_click(viewer, (20, 20))
    mouse_click(viewer, (25, 25), button=2)
    wait_idle(widget, qtbot)
    assert "2 click(s): 1 object, 1 background" in widget.state_label.text()
    widget.finish()
    wait_idle(widget, qtbot)
    mouse_click(viewer, (30, 8))
    wait_idle(widget, qtbot)
    widget.finish()
    wait_idle(widget, qtbot)
    assert widget.labels_layer.selected_label == 2
    widget.labels_layer.mode = "paint"  # the brush takes the clicks now: the state line says so
    viewer.layers.selection.active = widget.labels_layer
    assert "Clicks now go to the layer" in widget.state_label.text()


def test_busy_bar_shows_while_a_click_is_computed(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)))
    widget = open_widget(viewer, qtbot, SlowDiskPredictor())
    assert widget.progress.isHidden()
    mouse_click(viewer, (20, 20))
    assert not widget.progress.isHidden() and "working" in widget.state_label.text()
    wait_idle(widget, qtbot)
    assert widget.progress.isHidden() and "working" not in widget.state_label.text()


def test_markers_keep_their_screen_size_across_zoom(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    dark = 10 + np.arange(200, dtype=np.uint16)[None, :].repeat(200, 0) % 7
    viewer.add_image(dark, name="dark")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    mouse_click(viewer, (100, 100))
    wait_idle(widget, qtbot)
    viewer.layers["dark"].visible = False
    green = []
    for zoom in (1.0, 4.0):
        viewer.camera.center, viewer.camera.zoom = (100, 100), zoom
        shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
        green.append(int(((shot[..., 1] > 150) & (shot[..., 0] < 120)).sum()))
    assert green[0] > 10 and abs(green[1] - green[0]) <= 0.25 * green[0], green


def test_a_failed_download_keeps_the_working_model(make_napari_viewer, qtbot, monkeypatch):
    from napari_ritm.model import zoo

    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)))
    widget = open_widget(viewer, qtbot)
    working = widget.models.predictor
    assert widget.model_combo.currentData() == "default" and working is not None

    def no_network(name, **kwargs):
        raise zoo.DownloadError("could not download ... (a long urllib3 traceback) " * 20,
                                url="https://example.org/m.pth", path=zoo.local_path(name))

    monkeypatch.setattr(zoo, "fetch", no_network)
    choose_model(widget, qtbot, "coco_lvis_h18s_itermask", loaded=False)
    message = widget.status.text()
    assert message.startswith("Could not download model 'coco_lvis_h18s_itermask'. Save ")
    assert "Still using Microscopy" in message and len(message) < 300
    assert widget.model_combo.currentData() == "default" and widget.models.predictor is working


def test_channel_picker_uses_one_channel_and_remembers_it(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = np.full((2, 40, 40), 10, np.uint16)
    image[0, 5:20, 5:20] = 3000  # nuclei channel
    image[1, 20:35, 20:35] = 3000  # membrane channel
    viewer.add_image(image, name="two channels")
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="gray")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    widget.image_combo.setCurrentText("two channels")
    assert widget.channel_combo.isEnabled() and widget.channel_combo.count() == 3
    widget.channel_combo.setCurrentText("channel 1 (first axis)")
    assert widget.labels_layer.data.shape == (40, 40)  # the channel axis is not spatial
    mouse_click(viewer, (0, 27, 27))
    wait_idle(widget, qtbot)
    assert widget.session.preview[27, 27] and not widget.session.preview[10, 10]
    widget.finish()
    wait_idle(widget, qtbot)
    widget.image_combo.setCurrentText("gray")
    assert not widget.channel_combo.isEnabled()
    widget.image_combo.setCurrentText("two channels")
    assert widget.channel_combo.currentText() == "channel 1 (first axis)"
    assert widget.labels_layer.data[27, 27] == 1


def test_the_widget_saves_a_record_that_replays_its_labels(make_napari_viewer, qtbot, tmp_path):
    from napari_ritm.session.replay import replay

    viewer = make_napari_viewer()
    image = blob_image((40, 50), (5, 35, 5, 45))
    viewer.add_image(image, name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor(radius=3))
    for world, button in (((10, 10), 1), ((12, 12), 2), ((30, 40), 1)):
        mouse_click(viewer, world, button=button)
    wait_idle(widget, qtbot)
    widget.undo()
    widget.finish()
    widget.threshold_slider.setValue(80)
    mouse_click(viewer, (25, 20))
    wait_idle(widget, qtbot)
    widget.finish()
    wait_idle(widget, qtbot)
    widget.save_record(str(tmp_path / "cells.ritm.json"))
    assert "Record saved" in widget.status.text()
    result = replay(tmp_path / "cells.ritm.json", image,
                    predictor_for=lambda entry: DiskPredictor(radius=3))
    assert result.exact and widget.labels_layer.data.any()
    np.testing.assert_array_equal(result.labels, widget.labels_layer.data)
