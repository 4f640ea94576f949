"""**Objects from points**: one object per point of a Points layer, made in the background.

A magicgui form, napari's convention for a tool that takes layers and a few settings: the
Image, the Points (a spot detector's output, or points placed by hand), the Labels layer to
write into, the model and the threshold. **Make objects** runs
:func:`napari_ritm.session.points.objects_from_points_steps` in a worker thread (one torch
thread; progress in napari's activity panel; the button then reads **Stop**, which keeps the
objects made so far) and writes them in one undo step. Pixels of other labels are never taken,
and pixels painted while it ran are kept.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSlider, Label, PushButton, create_widget
from napari.layers import Image, Labels, Points
from napari.utils.notifications import show_info

from napari_ritm._qt.layers import image_source, plane_coords
from napari_ritm._qt.workers import network_worker
from napari_ritm.inference.clicks import DEFAULT_THRESHOLD
from napari_ritm.inference.modes import WIDGET_MODE
from napari_ritm.model.user_folder import user_models
from napari_ritm.model.zoo import REGISTRY
from napari_ritm.session.editing import check_layers_match

if TYPE_CHECKING:
    import napari

__all__ = ["ObjectsFromPoints", "points_in_labels"]

MAKE, STOP = "Make objects", "Stop"


def _model_choices(_widget: Any = None) -> list[tuple[str, str]]:
    """(label, name) of the registered models and the user's own."""
    return [(entry.label or name, name) for name, entry in REGISTRY.items()] + [
        (name, name) for name in user_models()]


def points_in_labels(points: Points, labels: Labels) -> list[tuple[tuple[int, ...], float, float]]:
    """Each point as (slice key, row, column) in ``labels``' pixels; a point outside the stack
    gets a key of -1s (counted as outside). The layers must have as many dimensions."""
    if points.ndim != labels.ndim:
        raise ValueError(f"The Points layer {points.name!r} has {points.ndim} dimensions and the "
                         f"Labels layer {labels.name!r} {labels.ndim}: add the points on the "
                         "same image")
    outside = ((-1,) * (labels.ndim - 2), -1.0, -1.0)
    return [plane_coords(labels, points.data_to_world(p)) or outside for p in points.data]


def _load_predictor(model: str) -> Any:
    from napari_ritm.inference.modes import make_predictor
    from napari_ritm.model.zoo import load_model

    return make_predictor(load_model(model), WIDGET_MODE, interactive=True)


def _run(model: str, image: Any, labels: np.ndarray, points: list, threshold: float,
         should_stop: Any):
    """The worker's generator: load the model, then one object per point (yields per point)."""
    from napari_ritm.session.points import objects_from_points_steps

    predictor = _load_predictor(model)
    return (yield from objects_from_points_steps(image, labels, points, predictor,
                                                 threshold=threshold, should_stop=should_stop))


class ObjectsFromPoints(Container):
    """The dock widget: layer and model choices, the threshold, a run/stop button, a status."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        self.viewer = napari_viewer
        self.image_box = create_widget(annotation=Image, label="Image")
        self.image_box.tooltip = "The image the objects are segmented in"
        self.points_box = create_widget(annotation=Points, label="Points")
        self.points_box.tooltip = ("One object per point: e.g. a spot detector's output, or points "
                               "placed by hand on the objects")
        self.labels_box = create_widget(annotation=Labels, label="Labels")
        self.labels_box.tooltip = ("Where the objects are written, each with a new label; pixels "
                               "that already hold a label are never taken")
        self.model_box = ComboBox(label="Model", choices=_model_choices, value="default")
        self.model_box.tooltip = "The network that segments each object from its point"
        self.threshold_slider = FloatSlider(label="Threshold", min=0.05, max=0.95, step=0.01,
                                     value=DEFAULT_THRESHOLD)
        self.threshold_slider.tooltip = "Higher: tighter masks; lower: larger masks"
        self.run_button = PushButton(text=MAKE)
        self.run_button.tooltip = ("Segment one object per point (Stop keeps the objects made "
                                   "so far)")
        self.status = Label(value="")
        super().__init__(widgets=[self.image_box, self.points_box, self.labels_box, self.model_box,
                                  self.threshold_slider, self.run_button, self.status])
        self.run_button.changed.connect(self._on_button)
        self.worker: Any = None
        self._stop = False

    def say(self, message: str) -> None:
        self.status.value = message
        show_info(message)

    def _on_button(self) -> None:
        if self.worker is not None:
            self._stop = True
            self.say("Stopping after the current point...")
            return
        image, points, labels = self.image_box.value, self.points_box.value, self.labels_box.value
        if image is None or points is None or labels is None:
            self.say("Choose an Image, a Points and a Labels layer first")
            return
        try:
            source, shape = image_source(image)
            check_layers_match(shape, labels.data.shape, labels_name=labels.name)
            where = points_in_labels(points, labels)
        except ValueError as error:
            self.say(str(error))
            return
        if not where:
            self.say(f"The Points layer {points.name!r} has no points")
            return
        self._stop = False
        worker = network_worker(
            _run, self.model_box.value, source, np.asarray(labels.data), where,
            float(self.threshold_slider.value), lambda: self._stop,
            _progress={"total": len(where), "desc": "Objects from points"},
            returned=lambda result: self._write(result, labels),
            errored=lambda error: self.say(f"Objects from points failed: {error}"),
            finished=self._finished)
        self.worker = worker
        self.run_button.text = STOP
        self.status.value = f"Segmenting {len(where)} point(s)..."
        worker.start()

    def _write(self, result: Any, labels: Labels) -> None:
        if labels not in self.viewer.layers:
            self.say(f"The Labels layer {labels.name!r} was closed: nothing written")
            return
        written, kept = result.writes.apply(labels)
        kept_text = f"; {kept} pixel(s) painted meanwhile were kept" if kept else ""
        self.say(f"{result.summary()}: {written} pixel(s) written in one undo step{kept_text}")

    def _finished(self) -> None:
        self.worker = None
        self.run_button.text = MAKE
