"""The dock's tools that learn from the user's labels. "Adapt model to my labels": a short
adaptation in the background on a tiny set, with progress; the adapted model is saved with its
card, used, the threshold fitted with it, and switching back is one click; one of the two tools
runs at a time. "Fit threshold to my labels": the slider moves to
the threshold that matches the outlines."""
from __future__ import annotations

import json

import pytest
import tifffile

from test_widget import choose_model, open_widget, wait_idle

# what new_predictor says of the stand-in predictors the fits below run with
FIT_INFO = {"model": "default", "sha256": None, "mode": "window", "settings": {"flip": False}}


@pytest.mark.parametrize("better", [True, False], ids=["better", "no better"])
def test_adapt_model_to_my_labels(make_napari_viewer, qtbot, data_dir, tmp_path, monkeypatch,
                                  better):
    from napari_ritm.training.adapt import AdaptOptions, AdaptResult

    monkeypatch.setenv("NAPARI_RITM_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(AdaptResult, "improved", property(lambda self: better))
    viewer = make_napari_viewer()
    viewer.add_image(tifffile.imread(data_dir / "blobs" / "images" / "blobs.tif"), name="blobs")
    viewer.add_labels(tifffile.imread(data_dir / "blobs" / "labels" / "blobs.tif"),
                      name="my labels")
    widget = open_widget(viewer, qtbot)
    widget.labels_combo.setCurrentText("my labels")
    widget.threshold_slider.setValue(55)  # the user's threshold with default
    widget.adapt.adapt_options = AdaptOptions(steps=3, batch_size=2, crop_size=(64, 64),
                                              max_clicks=2, min_area=20)
    widget.adapt_button.click()
    assert widget.adapt_button.text() == "Cancel adaptation" and not widget.progress.isHidden()
    from napari.utils import progress

    assert [bar.total for bar in progress._all_instances if "adapting" in bar.desc] == [3]
    qtbot.waitUntil(lambda: widget.adapt._adapt_worker is None, timeout=300000)
    wait_idle(widget, qtbot)
    assert widget.adapt_button.text().startswith("Adapt model")
    models = tmp_path / "models"
    if not better:
        assert "no better" in widget.status.text() and not models.exists()
        assert widget.model_combo.currentData() == "default"
        return
    card = json.loads((models / "default-adapted.json").read_text())
    assert card["source_model"] == "default" and card["steps"] == 3
    assert (models / "default-adapted.pth").is_file()
    assert widget.models.model_name == "default-adapted"
    assert widget.model_combo.currentData() == "default-adapted"
    # then the fit, with it
    qtbot.waitUntil(lambda: widget.adapt._fit_worker is None, timeout=120000)
    assert not any("napari-ritm" in bar.desc for bar in progress._all_instances)
    status = widget.status.text()
    assert status.startswith("Adapted model 'default-adapted' is better") and \
        "one click away" in status
    assert "Threshold 0.49: the models' default" in status  # the adapted model starts there
    assert "Threshold 0.49 -> " in status or "0.49 already fits your labels" in status
    assert "kept in the card of 'default-adapted'" in status
    fitted = widget.threshold_slider.value()
    assert widget.session.threshold == fitted / 100
    card = json.loads((models / "default-adapted.json").read_text())
    assert round(card["threshold"] * 100) == fitted and card["source_model"] == "default"
    widget.threshold_slider.setValue(30)
    for name, value in (("default", 55), ("default-adapted", 30)):  # one click in the Model box
        choose_model(widget, qtbot, name)  # each model gets back its own threshold
        assert widget.models.model_name == name and widget.threshold_slider.value() == value
        assert widget.session.threshold == value / 100
        assert f"Threshold {value / 100:.2f}: this model's earlier" in widget.status.text()
    choose_model(widget, qtbot, "default-adapted")  # again: the slider stays, nothing said
    assert widget.threshold_slider.value() == 30 and "Threshold" not in widget.status.text()


def test_cancel_leaves_the_model(make_napari_viewer, qtbot, data_dir, monkeypatch, tmp_path):
    from qtpy.QtCore import Qt

    from napari_ritm.training.adapt import AdaptOptions

    monkeypatch.setenv("NAPARI_RITM_MODELS", str(tmp_path / "models"))
    viewer = make_napari_viewer()
    viewer.add_image(tifffile.imread(data_dir / "blobs" / "images" / "blobs.tif"), name="blobs")
    viewer.add_labels(tifffile.imread(data_dir / "blobs" / "labels" / "blobs.tif"), name="lab")
    widget = open_widget(viewer, qtbot)
    widget.labels_combo.setCurrentText("lab")
    widget.adapt.adapt_options = AdaptOptions(steps=500, batch_size=2, crop_size=(64, 64),
                                        max_clicks=2, min_area=20)
    widget.adapt_button.click()
    qtbot.mouseClick(widget.fit_button, Qt.MouseButton.LeftButton)  # one tool at a time
    assert "An adaptation is running" in widget.status.text()
    assert widget.adapt._fit_worker is None
    widget.adapt_button.click()  # the same button cancels
    qtbot.waitUntil(lambda: widget.adapt._adapt_worker is None, timeout=300000)
    assert "cancelled" in widget.status.text() and widget.models.model_name == "default"
    assert not (tmp_path / "models").exists()


def test_adapt_on_the_objects_made_in_this_session(make_napari_viewer, qtbot, monkeypatch):
    """'Adapt on: objects made in this session' trains on just the clicked object: labels that
    were there before are left out; with nothing made yet it says so and starts nothing."""
    import numpy as np

    import napari_ritm.training.adapt as adapt_module
    from _fakes import DiskPredictor
    from test_widget import blob_image, mouse_click

    seen = []

    def fake_adapt(net, samples, options, **kwargs):
        seen.append(samples)  # and cancelled

    monkeypatch.setattr(adapt_module, "adapt", fake_adapt)
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((48, 64), (10, 30, 10, 40)), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor(radius=4))
    painted = np.zeros((48, 64), np.int32)
    painted[40:45, 50:60] = 5  # from another tool, before the session
    widget.labels_layer.data = painted
    widget.adapt_scope_combo.setCurrentText("objects made in this session")
    widget.adapt_button.click()
    assert "No object made in this session" in widget.status.text() and not seen
    mouse_click(viewer, (20, 20))
    wait_idle(widget, qtbot)
    widget.finish_button.click()
    wait_idle(widget, qtbot)
    widget.adapt_button.click()
    qtbot.waitUntil(lambda: widget.adapt._adapt_worker is None, timeout=60000)
    (samples,) = seen
    assert len(samples) == 1 and set(np.unique(samples[0].labels)) == {0, 6}
    assert "cancelled" in widget.status.text()
    widget.adapt_scope_combo.setCurrentText("all objects of the layer")
    widget.adapt_button.click()
    qtbot.waitUntil(lambda: widget.adapt._adapt_worker is None, timeout=60000)
    assert set(np.unique(seen[1][0].labels)) == {0, 5, 6}


def test_fit_threshold_to_my_labels(make_napari_viewer, qtbot, monkeypatch, tmp_path):
    """The button clicks once on each object of the Labels layer and moves the Threshold slider
    to where the masks match the outlines; the session thresholds with it; the fit is kept for
    the built-in model, whose next dock starts at it; a second fit finds nothing to change;
    with "objects made in this session" and none made it says so."""
    import numpy as np
    from qtpy.QtCore import Qt

    from _fakes import DiskPredictor, RadialPredictor
    from napari_ritm.model.zoo import model_file_hash
    from test_threshold import disks

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).integers(0, 255, (80, 80), np.uint8), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    fitting = RadialPredictor(radius=10, width=2)  # the model's masks: radius 10 at 0.5
    monkeypatch.setattr(widget.models, "new_predictor", lambda: (fitting, FIT_INFO))
    widget.labels_layer.data = disks(7)  # drawn tighter: sigmoid(1.5) = 0.82 fits them
    assert widget.threshold_slider.value() == 49
    qtbot.mouseClick(widget.fit_button, Qt.MouseButton.LeftButton)
    assert widget.fit_button.text() == "Stop fitting" and not widget.progress.isHidden()
    qtbot.waitUntil(lambda: widget.adapt._fit_worker is None, timeout=60000)
    assert fitting.predict_calls == 3
    assert 75 <= widget.threshold_slider.value() <= 85
    fitted = widget.threshold_slider.value() / 100
    assert widget.session.threshold == fitted
    assert widget.threshold_label.text() == f"{fitted:.2f}"
    assert f"0.49 -> {fitted:.2f}" in widget.status.text() and "on 3 of your objects" in \
        widget.status.text()
    assert widget.fit_button.text() == "Fit threshold to my labels" and widget.progress.isHidden()
    assert "kept in the card of 'default'" in widget.status.text()
    card = json.loads((tmp_path / "user-models" / "registered" / "default.json").read_text())
    assert card["threshold"] == fitted and card["sha256"] == model_file_hash("default")
    assert card["threshold_fit"]["predictor"] == {"mode": "window", "flip": False}
    later = open_widget(make_napari_viewer(), qtbot)  # napari opened again
    assert later.threshold_slider.value() / 100 == fitted
    assert "Threshold" in later.status.text() and "fitted to your labels" in later.status.text()
    qtbot.mouseClick(widget.fit_button, Qt.MouseButton.LeftButton)  # again: nothing to change
    qtbot.waitUntil(lambda: widget.adapt._fit_worker is None, timeout=60000)
    assert "already fits your labels" in widget.status.text()
    assert widget.threshold_slider.value() / 100 == fitted
    widget.adapt_scope_combo.setCurrentText("objects made in this session")
    qtbot.mouseClick(widget.fit_button, Qt.MouseButton.LeftButton)
    assert "No object made in this session" in widget.status.text()
    assert widget.adapt._fit_worker is None and fitting.predict_calls == 6


def test_stop_fitting_leaves_the_threshold(make_napari_viewer, qtbot, monkeypatch):
    """The same button stops a fit that runs: the slider stays where it was. The adaptation
    waits for a running fit."""
    import time

    import numpy as np
    from qtpy.QtCore import Qt

    from _fakes import DiskPredictor, RadialPredictor
    from test_threshold import disks

    class Slow(RadialPredictor):
        def predict(self, clicks, prev_mask=None):
            time.sleep(0.3)
            return super().predict(clicks, prev_mask)

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).integers(0, 255, (80, 80), np.uint8), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    fitting = Slow(radius=10, width=2)
    monkeypatch.setattr(widget.models, "new_predictor", lambda: (fitting, FIT_INFO))
    widget.labels_layer.data = disks(7)
    qtbot.mouseClick(widget.fit_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(widget.adapt_button, Qt.MouseButton.LeftButton)  # one tool at a time
    assert "Wait for the threshold fit" in widget.status.text()
    assert widget.adapt._adapt_worker is None
    qtbot.mouseClick(widget.fit_button, Qt.MouseButton.LeftButton)  # "Stop fitting"
    qtbot.waitUntil(lambda: widget.adapt._fit_worker is None, timeout=60000)
    assert fitting.predict_calls < 3 and widget.threshold_slider.value() == 49
    assert "Fitting stopped" in widget.status.text()


class _SlowUntil:
    """A fitting predictor (RadialPredictor) whose predictions wait for ``ready()``."""

    def __new__(cls, ready):
        import time

        from _fakes import RadialPredictor

        class Slow(RadialPredictor):
            def predict(self, clicks, prev_mask=None):
                deadline = time.monotonic() + 600  # a model load can take minutes under load
                while not ready() and time.monotonic() < deadline:
                    time.sleep(0.05)
                return super().predict(clicks, prev_mask)

        return Slow(radius=10, width=2)


def test_a_fit_belongs_to_the_model_it_ran_with(make_napari_viewer, qtbot, monkeypatch,
                                                tmp_path):
    """A user model starts at the threshold its card keeps. Choosing another model while a fit
    runs: the fit is kept in the card of the model it ran with, the slider goes to the
    threshold of the model now in use, and to the fit when the first model is chosen again."""
    import shutil

    import numpy as np
    from qtpy.QtCore import Qt

    from _fakes import DiskPredictor
    from napari_ritm.model.user_models import recorded_threshold
    from napari_ritm.model.zoo import local_path
    from test_threshold import disks

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(local_path("default"), models / "mine.pth")
    (models / "mine.json").write_text(json.dumps({"source_model": "default", "threshold": 0.3}))
    monkeypatch.setenv("NAPARI_RITM_MODELS", str(models))
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).integers(0, 255, (80, 80), np.uint8), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    choose_model(widget, qtbot, "mine")
    assert widget.threshold_slider.value() == 30 and widget.session.threshold == 0.3
    assert "Threshold 0.30: fitted to your labels with this model" in widget.status.text()
    fitting = _SlowUntil(lambda: widget.models.model_name == "default")
    monkeypatch.setattr(widget.models, "new_predictor", lambda: (fitting, FIT_INFO))
    widget.labels_layer.data = disks(7)
    qtbot.mouseClick(widget.fit_button, Qt.MouseButton.LeftButton)
    choose_model(widget, qtbot, "default")  # the user switches while it runs
    qtbot.waitUntil(lambda: widget.adapt._fit_worker is None, timeout=600000)
    fitted = recorded_threshold("mine")
    assert 0.75 <= fitted <= 0.85  # its card: tighter outlines
    assert widget.threshold_slider.value() == 49 and widget.session.threshold == 0.49
    assert "'mine', which is no longer in use" in widget.status.text()
    choose_model(widget, qtbot, "mine")
    assert widget.threshold_slider.value() == round(fitted * 100)


def test_the_outcome_of_a_fit_is_not_overwritten_by_its_progress(make_napari_viewer, qtbot,
                                                                 monkeypatch):
    """napari's progress bar handles pending Qt events when it moves: a fit's outcome can be
    said while the last progress tick advances the bar, and must stay on the status line."""
    import numpy as np

    from _fakes import DiskPredictor

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((40, 40), np.uint8), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    widget.set_busy("threshold", True, total=3)
    monkeypatch.setattr(widget._activity, "update",
                        lambda *args: widget.say("Threshold 0.80 fits your labels"))
    widget.adapt._fit_progress = (3, 3)
    widget.adapt._show_fit_progress()
    assert widget.status.text() == "Threshold 0.80 fits your labels"
    widget.set_busy("threshold", False)


def test_the_adapted_models_fit_replaces_a_running_one(make_napari_viewer, qtbot, monkeypatch):
    """A fit the user started while the adapted model was loading is stopped; the adapted
    model's fit runs on the objects it learnt from, and its outcome follows the adaptation's."""
    import numpy as np
    from qtpy.QtCore import Qt

    from _fakes import DiskPredictor
    from test_threshold import disks, sample

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).integers(0, 255, (80, 80), np.uint8), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    go = []
    fitting = _SlowUntil(lambda: bool(go))
    monkeypatch.setattr(widget.models, "new_predictor", lambda: (fitting, FIT_INFO))
    widget.labels_layer.data = disks(10)  # the layer now: drawn as the model
    qtbot.mouseClick(widget.fit_button, Qt.MouseButton.LeftButton)
    widget.adapt._fit_adapted("Adapted model 'a' is better", [sample(disks(7))])  # learnt: tighter
    assert widget.adapt._fit_stop
    go.append(True)
    qtbot.waitUntil(lambda: widget.adapt._fit_worker is None and widget.adapt._fit_queued is None,
                    timeout=60000)  # (the queued fit starts as the stopped one finishes)
    status = widget.status.text()
    assert status.startswith("Adapted model 'a' is better. Threshold 0.49 -> "), status
    assert 75 <= widget.threshold_slider.value() <= 85


def test_a_user_model_by_name_and_by_file_share_its_threshold(tmp_path, monkeypatch):
    """The threshold memory has one entry per model file: a user model chosen in the Model box
    and the same file opened with "Choose a .pth file..." are one model."""
    from napari_ritm._qt.model_panel import model_key

    monkeypatch.setenv("NAPARI_RITM_MODELS", str(tmp_path / "models"))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.pth").write_bytes(b"")
    assert model_key("mine") == model_key(str(tmp_path / "models" / "mine.pth"))
    assert model_key("default") == "default"
    assert model_key("other.pth") != model_key("mine")
