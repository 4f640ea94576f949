"""The data half of the dock widget: which image, channel and labels layer a session uses.

:class:`LayerPanel` is one of :class:`napari_ritm._qt.widget.RITMWidget`'s panels
(``widget.layers``): it fills the image, channel and labels boxes from the viewer's layers,
pairs each image with its own labels layer, and starts or stops the
:class:`~napari_ritm.session.Session` with its preview and clicks layers when the choice changes
or a layer goes away.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from napari.layers import Image, Labels, Points
from qtpy.QtCore import QTimer

from napari_ritm._qt.layers import (
    OWN,
    add_clicks_layer,
    add_preview_layer,
    channel_choices,
    image_source,
)
from napari_ritm.session import Session
from napari_ritm.session.editing import check_layers_match

__all__ = ["NEW_LABELS", "LayerPanel"]

NEW_LABELS = "<new labels layer>"
CLICKS_DRAWN = ("The RITM clicks layer is drawn for you: click on the image to add clicks (left: "
                "object, right: background); Undo removes the last one")


class LayerPanel:
    """The dock's Image, Channel and Labels boxes and what they choose: the session on the chosen
    layers (``session``, ``image_layer``, ``labels_layer``) with its ``preview_layer`` and
    ``clicks_layer``, started again when the choice changes and stopped when a layer goes away.
    ``host``: the dock widget (its controls, viewer, status line, drawing and the panels whose
    work stops with the session); the widget reads the session and layers from here."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.session: Session | None = None
        self.image_layer: Image | None = None
        self.labels_layer: Labels | None = None
        self.clicks_layer: Points | None = None
        self.preview_layer: Labels | None = None
        self._pairs: dict[str, str] = {}  # image layer name -> the labels layer used with it
        self._channels: dict[str, str] = {}  # image layer name -> channel chosen for it
        self._filling = False  # combos being filled: ignore their change signals
        self._rebuilding = False
        host.image_combo.currentTextChanged.connect(self._on_image_chosen)
        host.channel_combo.currentTextChanged.connect(self._on_channel_chosen)
        host.labels_combo.currentTextChanged.connect(lambda _: self._rebuild_session())
        for combo in (host.image_combo, host.labels_combo):
            combo.activated.connect(lambda _, combo=combo: self._on_combo_activated(combo))
        host.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        host.viewer.layers.events.removed.connect(self._on_layer_removed)

    def start(self) -> None:
        """Fill the boxes from the viewer's layers and start on the layers they show."""
        self._fill_combos()
        self._rebuild_session()

    def _own_layers(self) -> tuple:
        return tuple(x for x in (self.clicks_layer, self.preview_layer) if x is not None)

    def _fill_combos(self) -> None:
        self._filling = True
        try:
            for combo, kind, extra in ((self.host.image_combo, Image, ()),
                                       (self.host.labels_combo, Labels, (NEW_LABELS,))):
                current = combo.currentText()
                names = [*extra, *(layer.name for layer in self.host.viewer.layers
                                   if isinstance(layer, kind) and OWN not in layer.metadata)]
                combo.clear()
                combo.addItems(names)
                if current in names:
                    combo.setCurrentText(current)
            self._fill_channels()
        finally:
            self._filling = False

    def _fill_channels(self) -> None:
        image = self._layer(self.host.image_combo.currentText(), Image)
        choices = channel_choices(image) if image is not None else []
        self.host.channel_combo.clear()
        self.host.channel_combo.addItems([text for text, _ in choices])
        self.host.channel_combo.setEnabled(len(choices) > 1)
        if image is not None and self._channels.get(image.name) in [t for t, _ in choices]:
            self.host.channel_combo.setCurrentText(self._channels[image.name])

    def _on_combo_activated(self, combo: Any) -> None:
        """The user picked an item of ``combo``, maybe the one shown already: with no session
        (a layer was removed, or the layers did not match), that starts one."""
        if self.session is not None or self._filling:
            return
        if combo is self.host.image_combo:
            self._on_image_chosen(self.host.image_combo.currentText())
        else:
            self._rebuild_session()

    def _on_image_chosen(self, name: str) -> None:
        """Another image: its channel choice and its own labels layer come with it (the one
        used with it before, or "<image> labels" when it fits, else a new one)."""
        if self._filling:
            return
        self._filling = True
        try:
            self._fill_channels()
            self.host.labels_combo.setCurrentText(self._labels_for(name) or NEW_LABELS)
        finally:
            self._filling = False
        self._rebuild_session()

    def _on_channel_chosen(self, text: str) -> None:
        if self._filling or not text:
            return
        self._channels[self.host.image_combo.currentText()] = text
        self._filling = True
        self.host.labels_combo.setCurrentText(self._labels_for(self.host.image_combo.currentText())
                                         or NEW_LABELS)
        self._filling = False
        self._rebuild_session()

    def _labels_for(self, image_name: str) -> str | None:
        image = self._layer(image_name, Image)
        if image is None:
            return None
        spatial = image_source(image, self.host.channel_combo.currentText())[1]
        for name in (self._pairs.get(image_name), f"{image_name} labels"):
            layer = self._layer(name or "", Labels)
            if layer is not None and layer.data.shape == spatial:
                return layer.name
        return None

    def _layer(self, name: str, kind: type) -> Any:
        layers = self.host.viewer.layers
        return next((x for x in layers if x.name == name and isinstance(x, kind)), None)

    def _rebuild_session(self) -> None:
        """(Re)start on the chosen image and labels layers; refuses mismatching layers."""
        if self._filling or self._rebuilding:
            return
        self._rebuilding = True
        try:
            self._start_session()
        finally:
            self._rebuilding = False

    def _start_session(self) -> None:
        discarded = self.session is not None and bool(self.session.clicks)
        if discarded:
            self.host.say("Layers changed: the object in progress was discarded")
        self._stop_session()
        image = self._layer(self.host.image_combo.currentText(), Image)
        if image is None:
            return
        source, spatial = image_source(image, self.host.channel_combo.currentText())
        labels = self._layer(self.host.labels_combo.currentText(), Labels)
        if labels is None:
            ndim = len(spatial)
            labels = self.host.viewer.add_labels(np.zeros(spatial, np.uint32),
                                            name=f"{image.name} labels",
                                            scale=image.scale[-ndim:],
                                            translate=image.translate[-ndim:])
            self._filling = True
            self._fill_combos()
            self.host.labels_combo.setCurrentText(labels.name)
            self._filling = False
        ndim = len(spatial)
        try:
            check_layers_match(spatial, labels.data.shape, image_scale=image.scale[-ndim:],
                               labels_scale=labels.scale, labels_name=labels.name,
                               image_translate=image.translate[-ndim:],
                               labels_translate=labels.translate)
        except ValueError as error:
            self.host.warn(f"Cannot use these layers: {error}")
            return
        self.session = Session(source, labels, predictor=None,
                               threshold=self.host.threshold_slider.value() / 100,
                               overwrite=self.host.overwrite_check.isChecked(),
                               labels_name=labels.name, notify=self.host.say)
        self.session.set_predictor(self.host.models.predictor, self.host.models.predictor_info)
        self.image_layer, self.labels_layer = image, labels
        self._pairs[image.name] = labels.name
        image.events.contrast_limits.connect(self.host._on_contrast)
        self.host._drawn_clicks = self.host._drawn_preview = None  # new layers: nothing drawn yet
        self.preview_layer = add_preview_layer(self.host.viewer, labels, "RITM preview")
        self.clicks_layer = add_clicks_layer(self.host.viewer, labels, "RITM clicks",
                                             self.host.marker_spin.value())
        self.clicks_layer.events.mode.connect(self.restore_clicks_mode)
        self.clicks_layer.events.data.connect(self._on_clicks_edited)
        self.host.shortcuts.attach(labels, self.preview_layer, self.clicks_layer)
        self.host.viewer.layers.selection.active = self.clicks_layer
        self.host._on_dims()
        self.host.refresh()
        note = self.host.intensity_note()
        if note:
            self.host.say(("Layers changed: the object in progress was discarded. " if discarded
                      else "") + note)

    def _stop_session(self) -> None:
        if self.session is not None:
            self.session.reset("")
            self.session = None
        if self.host._propagation is not None:
            self.host.stop_propagation()
        if self.image_layer is not None:
            self.image_layer.events.contrast_limits.disconnect(self.host._on_contrast)
        self.host.shortcuts.detach()
        self.host.proofread.stop()
        own = self._own_layers()
        self.image_layer = self.labels_layer = self.clicks_layer = self.preview_layer = None
        for layer in own:
            if layer in self.host.viewer.layers:
                self.host.viewer.layers.remove(layer)

    def _on_layer_inserted(self, event: Any) -> None:
        self._fill_combos()
        if self.session is None and not self._rebuilding and isinstance(event.value, Image):
            self._on_image_chosen(self.host.image_combo.currentText())  # opened before the image

    def _on_layer_removed(self, event: Any) -> None:
        """A layer went away. Removing more layers or showing a notification inside napari's
        own removal event can crash napari (a segfault, seen with software OpenGL), so the
        work waits for the event loop's next turn."""
        removed = event.value
        ours = (self.session is not None
                and removed in (self.image_layer, self.labels_layer, *self._own_layers()))
        if ours:  # nothing more may reach that labels layer
            self.session.reset("")
            self.session = None
        QTimer.singleShot(0, lambda: self._after_removal(removed, ours))

    def _after_removal(self, removed: Any, ours: bool) -> None:
        if not self.host._alive:
            return
        if ours:
            self._stop_session()
            self.host.warn(f"Layer {removed.name!r} was removed: session reset, nothing was "
                           "written. Choose the image and labels layers again to go on.")
        if not self._rebuilding:
            self._fill_combos()
        self.host.refresh()

    def restore_clicks_mode(self, event: Any = None) -> None:
        """The clicks layer is drawn by the widget: its napari tools (add, select, delete)
        would desynchronise it from the clicks the model uses."""
        layer = self.clicks_layer
        if layer is not None and str(layer.mode) != "pan_zoom":
            layer.mode = "pan_zoom"
        self.host.say(CLICKS_DRAWN)

    def _on_clicks_edited(self, event: Any = None) -> None:
        """Something other than the widget changed the clicks layer's points (napari's delete
        key, the layer's controls): draw the clicks in use again."""
        if not self.host._drawing_clicks and self.clicks_layer is not None:
            self.host._drawn_clicks = None
            self.host.refresh()
            self.host.say(CLICKS_DRAWN)

