"""The data half of the dock widget: which image, channel and labels layer a session uses.

:class:`LayerPanel` is a mix-in of :class:`napari_ritm._qt.widget.RITMWidget`: it fills the image,
channel and labels boxes from the viewer's layers, pairs each image with its own labels layer,
and starts or stops the :class:`~napari_ritm.session.Session` with its preview and clicks
layers when the choice changes or a layer goes away.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from napari.layers import Image, Labels
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
    """Layer choice and session lifetime for the dock widget (a mix-in)."""

    def _own_layers(self) -> tuple:
        return tuple(x for x in (self.clicks_layer, self.preview_layer) if x is not None)

    def _fill_combos(self) -> None:
        self._filling = True
        try:
            for combo, kind, extra in ((self.image_combo, Image, ()),
                                       (self.labels_combo, Labels, (NEW_LABELS,))):
                current = combo.currentText()
                names = [*extra, *(layer.name for layer in self.viewer.layers
                                   if isinstance(layer, kind) and OWN not in layer.metadata)]
                combo.clear()
                combo.addItems(names)
                if current in names:
                    combo.setCurrentText(current)
            self._fill_channels()
        finally:
            self._filling = False

    def _fill_channels(self) -> None:
        image = self._layer(self.image_combo.currentText(), Image)
        choices = channel_choices(image) if image is not None else []
        self.channel_combo.clear()
        self.channel_combo.addItems([text for text, _ in choices])
        self.channel_combo.setEnabled(len(choices) > 1)
        if image is not None and self._channels.get(image.name) in [t for t, _ in choices]:
            self.channel_combo.setCurrentText(self._channels[image.name])

    def _on_combo_activated(self, combo: Any) -> None:
        """The user picked an item of ``combo``, maybe the one shown already: with no session
        (a layer was removed, or the layers did not match), that starts one."""
        if self.session is not None or self._filling:
            return
        if combo is self.image_combo:
            self._on_image_chosen(self.image_combo.currentText())
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
            self.labels_combo.setCurrentText(self._labels_for(name) or NEW_LABELS)
        finally:
            self._filling = False
        self._rebuild_session()

    def _on_channel_chosen(self, text: str) -> None:
        if self._filling or not text:
            return
        self._channels[self.image_combo.currentText()] = text
        self._filling = True
        self.labels_combo.setCurrentText(self._labels_for(self.image_combo.currentText())
                                         or NEW_LABELS)
        self._filling = False
        self._rebuild_session()

    def _labels_for(self, image_name: str) -> str | None:
        image = self._layer(image_name, Image)
        if image is None:
            return None
        spatial = image_source(image, self.channel_combo.currentText())[1]
        for name in (self._pairs.get(image_name), f"{image_name} labels"):
            layer = self._layer(name or "", Labels)
            if layer is not None and layer.data.shape == spatial:
                return layer.name
        return None

    def _layer(self, name: str, kind: type) -> Any:
        return next((x for x in self.viewer.layers if x.name == name and isinstance(x, kind)), None)

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
            self.say("Layers changed: the object in progress was discarded")
        self._stop_session()
        image = self._layer(self.image_combo.currentText(), Image)
        if image is None:
            return
        source, spatial = image_source(image, self.channel_combo.currentText())
        labels = self._layer(self.labels_combo.currentText(), Labels)
        if labels is None:
            ndim = len(spatial)
            labels = self.viewer.add_labels(np.zeros(spatial, np.uint32),
                                            name=f"{image.name} labels",
                                            scale=image.scale[-ndim:],
                                            translate=image.translate[-ndim:])
            self._filling = True
            self._fill_combos()
            self.labels_combo.setCurrentText(labels.name)
            self._filling = False
        ndim = len(spatial)
        try:
            check_layers_match(spatial, labels.data.shape, image_scale=image.scale[-ndim:],
                               labels_scale=labels.scale, labels_name=labels.name,
                               image_translate=image.translate[-ndim:],
                               labels_translate=labels.translate)
        except ValueError as error:
            self.warn(f"Cannot use these layers: {error}")
            return
        self.session = Session(source, labels, predictor=None,
                               threshold=self.threshold_slider.value() / 100,
                               overwrite=self.overwrite_check.isChecked(),
                               labels_name=labels.name, notify=self.say)
        self.session.set_predictor(self.models.predictor, self.models.predictor_info)
        self.image_layer, self.labels_layer = image, labels
        self._pairs[image.name] = labels.name
        image.events.contrast_limits.connect(self._on_contrast)
        self._drawn_clicks = self._drawn_preview = None  # new layers: nothing drawn yet
        self.preview_layer = add_preview_layer(self.viewer, labels, "RITM preview")
        self.clicks_layer = add_clicks_layer(self.viewer, labels, "RITM clicks",
                                             self.marker_spin.value())
        self.clicks_layer.events.mode.connect(self._on_clicks_mode)
        self.clicks_layer.events.data.connect(self._on_clicks_edited)
        self.shortcuts.attach(labels, self.preview_layer, self.clicks_layer)
        self.viewer.layers.selection.active = self.clicks_layer
        self._on_dims()
        self.refresh()
        note = self.intensity_note()
        if note:
            self.say(("Layers changed: the object in progress was discarded. " if discarded
                      else "") + note)

    def _stop_session(self) -> None:
        if self.session is not None:
            self.session.reset("")
            self.session = None
        if self._propagation is not None:
            self.stop_propagation()
        if self.image_layer is not None:
            self.image_layer.events.contrast_limits.disconnect(self._on_contrast)
        self.shortcuts.detach()
        self.proofread.stop()
        own = self._own_layers()
        self.image_layer = self.labels_layer = self.clicks_layer = self.preview_layer = None
        for layer in own:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)

    def _on_layer_inserted(self, event: Any) -> None:
        self._fill_combos()
        if self.session is None and not self._rebuilding and isinstance(event.value, Image):
            self._on_image_chosen(self.image_combo.currentText())  # opened before the image

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
        if not self._alive:
            return
        if ours:
            self._stop_session()
            self.warn(f"Layer {removed.name!r} was removed: session reset, nothing was written. "
                      "Choose the image and labels layers again to go on.")
        if not self._rebuilding:
            self._fill_combos()
        self.refresh()

    def _on_clicks_mode(self, event: Any = None) -> None:
        """The clicks layer is drawn by the widget: its napari tools (add, select, delete)
        would desynchronise it from the clicks the model uses."""
        layer = self.clicks_layer
        if layer is not None and str(layer.mode) != "pan_zoom":
            layer.mode = "pan_zoom"
        self.say(CLICKS_DRAWN)

    def _on_clicks_edited(self, event: Any = None) -> None:
        """Something other than the widget changed the clicks layer's points (napari's delete
        key, the layer's controls): draw the clicks in use again."""
        if not self._drawing_clicks and self.clicks_layer is not None:
            self._drawn_clicks = None
            self.refresh()
            self.say(CLICKS_DRAWN)

