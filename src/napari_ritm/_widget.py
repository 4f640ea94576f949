"""The napari dock widget: a thin Qt shell around :class:`napari_ritm.session.Session`.

It translates napari events (mouse clicks on the clicks layer, key presses, slice changes, layer
removal) into session calls and session results into layer updates; all segmentation logic lives
in the session. Model loading, prediction and propagation run in ``thread_worker`` threads, one
predictor call at a time, so the viewer never freezes.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels, Points
from napari.qt.threading import create_worker
from napari.utils.notifications import show_warning
from qtpy.QtCore import QSignalBlocker, Qt
from qtpy.QtWidgets import QFileDialog

from napari_ritm._controls import CHOOSE_FILE, RITMControls
from napari_ritm._layers import (
    OWN,
    add_clicks_layer,
    add_preview_layer,
    bind_keys,
    click_callback,
    draw_clicks,
    draw_preview,
    image_source,
    plane_coords,
)
from napari_ritm.editing import check_layers_match
from napari_ritm.inference.modes import mode_settings
from napari_ritm.session import Session

if TYPE_CHECKING:
    import napari

NEW_LABELS = "<new labels layer>"


def _load_net(source: str) -> tuple[Any, dict[str, Any]]:
    """The network and its inference copy for each mode, built here in the background (exact
    mode's copy runs a probe), so that switching mode, flip or zoom-in is instant."""
    from napari_ritm.inference.modes import PREDICTOR_MODES, WINDOW_SETTINGS
    from napari_ritm.model.fuse import optimize
    from napari_ritm.model.zoo import load_model

    net = load_model(source)
    kinds = {"window": WINDOW_SETTINGS["optimize"]}
    kinds.update({mode: kw["optimize"] for mode, kw in PREDICTOR_MODES.items()})
    copies = {kind: optimize(net, kind).model for kind in set(kinds.values())}
    return net, {mode: copies[kind] for mode, kind in kinds.items()}


class RITMWidget(RITMControls):
    """Click-based segmentation dock: pick an image and a Labels layer, click, finish.

    In: ``napari_viewer``; the image layer (2D/3D/time, gray/RGB, any dtype, numpy or dask) and
    a Labels layer of the same pixel grid (or a new one). Out: objects written into the Labels
    layer through ``data_setitem`` (napari's Ctrl+Z undoes them), clicks in a Points layer and
    the current object's mask in a preview Labels layer.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session: Session | None = None
        self.image_layer: Image | None = None
        self.labels_layer: Labels | None = None
        self.clicks_layer: Points | None = None
        self.preview_layer: Labels | None = None
        self.net: Any = None
        self._networks: dict[str, Any] = {}  # speed mode -> inference copy of self.net
        self.predictor: Any = None
        self._worker: Any = None  # the one prediction/propagation worker
        self._model_worker: Any = None
        self._propagation: Any = None
        self._stopped = False  # the user pressed Stop during the running propagation
        self._filling = False  # combos being filled: ignore their change signals
        self._rebuilding = False
        self._selected: int | None = None
        self._connect()
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self.viewer.dims.events.point.connect(self._on_dims)
        # on the viewer, not on one layer: clicks land whichever layer is selected, unless that
        # layer's own tool (a brush, an eraser...) is in use
        callback = click_callback(self._canvas_click)
        callbacks = self.viewer.mouse_drag_callbacks
        callbacks.append(callback)
        self.destroyed.connect(lambda *_: callback in callbacks and callbacks.remove(callback))
        self._undo_armed = False  # Undo with no click asked once: the next one undoes a commit
        self._pairs: dict[str, str] = {}  # image layer name -> the labels layer used with it
        self._fill_combos()
        self._rebuild_session()
        self.load_model("default")

    def _connect(self) -> None:
        self.finish_button.clicked.connect(self.finish)
        self.undo_button.clicked.connect(self.undo)
        self.reset_button.clicked.connect(self.reset)
        self.refine_cursor_button.clicked.connect(self.refine_under_cursor)
        self.refine_selected_button.clicked.connect(self.refine_selected)
        self.up_button.clicked.connect(lambda: self.propagate(1))
        self.down_button.clicked.connect(lambda: self.propagate(-1))
        self.stop_button.clicked.connect(self.stop_propagation)
        self.image_combo.currentTextChanged.connect(self._on_image_chosen)
        self.labels_combo.currentTextChanged.connect(lambda _: self._rebuild_session())
        self.model_combo.activated.connect(self._on_model_chosen)
        self.mode_combo.currentTextChanged.connect(self._on_mode)
        self.zoom_check.toggled.connect(lambda _: self._build_predictor())
        self.flip_check.toggled.connect(lambda _: self._build_predictor())
        self.threshold_slider.valueChanged.connect(self._on_threshold)
        self.radius_spin.valueChanged.connect(lambda _: self._refresh())
        self.overwrite_check.toggled.connect(self._on_overwrite)

    def say(self, message: str) -> None:
        """Show ``message`` in the widget's status line."""
        self.status.setText(message)

    def warn(self, message: str) -> None:
        """Show ``message`` in the status line and as a napari warning."""
        self.say(message)
        show_warning(message)

    @property
    def idle(self) -> bool:
        """No model loading, prediction or propagation is running and nothing is queued."""
        busy = self.session is not None and self.session.busy
        return self._worker is None and self._model_worker is None and not busy

    def _show_busy(self, busy: bool, *, total: int = 0) -> None:
        self.progress.setRange(0, total)  # (0, 0): an indeterminate bar
        self.progress.setValue(0)
        self.progress.setVisible(busy)

    # -- model -------------------------------------------------------------------------------

    def _on_model_chosen(self, index: int) -> None:
        source = self.model_combo.itemData(index) or self.model_combo.itemText(index)
        if source == CHOOSE_FILE:
            source, _ = QFileDialog.getOpenFileName(self, "RITM checkpoint", "",
                                                    "RITM model (*.pth)")
            if not source:
                return
        self.load_model(source)

    def load_model(self, source: str | Path) -> None:
        """Load a registered model name or a .pth path in the background."""
        source = str(source)
        name = Path(source).name if Path(source).suffix == ".pth" else source
        if self.model_combo.findText(name) < 0:  # a file: listed by name, the path as its data
            self.model_combo.insertItem(self.model_combo.count() - 1, name, source)
            self.model_combo.setItemData(self.model_combo.count() - 2, source,
                                         Qt.ItemDataRole.ToolTipRole)
        self.model_combo.setCurrentText(name)
        self.say(f"Loading model {source}...")
        self._show_busy(True)
        worker = create_worker(_load_net, source, _ignore_errors=True)
        worker.returned.connect(lambda loaded: self._model_loaded(worker, source, *loaded))
        worker.errored.connect(lambda error: self._model_failed(worker, source, error))
        worker.finished.connect(lambda: self._model_worker_finished(worker))
        self._model_worker = worker
        worker.start()

    def _model_loaded(self, worker: Any, source: str, net: Any, networks: dict) -> None:
        if worker is self._model_worker:  # the user may have chosen another model meanwhile
            self.net, self._networks = net, networks
            self._build_predictor()
            self.say(f"Model {source} loaded: left click adds, right click (or Ctrl+click) removes")

    def _model_failed(self, worker: Any, source: str, error: BaseException) -> None:
        if worker is self._model_worker:
            self.say(f"Could not load model {source}: {error} Choose another model in the list.")

    def _model_worker_finished(self, worker: Any) -> None:
        if worker is self._model_worker:
            self._model_worker = None
            self._show_busy(False)
            self._pump()

    def _on_mode(self, mode: str) -> None:
        """A mode brings its own flip default; one new predictor for both changes. Zoom-in is
        a choice of the paper's predictor only (the window mode always zooms in)."""
        with QSignalBlocker(self.flip_check):
            self.flip_check.setChecked(mode_settings(mode)["flip"])
        self.zoom_check.setEnabled(mode != "window")
        self._build_predictor()

    def _build_predictor(self) -> None:
        if self.net is None:
            return
        from napari_ritm.inference.modes import make_predictor, set_interactive_threads

        # The paper's modes get the official demo's additions (zoomed in from the first click,
        # never more than 800 px through the network); the checkboxes override zoom-in and flip.
        mode = self.mode_combo.currentText()
        overrides = {"flip": self.flip_check.isChecked()}
        if mode != "window":
            overrides["zoom_in"] = self.zoom_check.isChecked()
        set_interactive_threads()
        self.set_predictor(make_predictor(self._networks[mode], mode, interactive=True,
                                          **overrides))

    def set_predictor(self, predictor: Any) -> None:
        """Predict with ``predictor`` (a ``Predictor`` or anything with its interface)."""
        self.predictor = predictor
        if self.session is not None:
            self.session.set_predictor(predictor)
            self._pump()

    # -- layers and session ------------------------------------------------------------------

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
        finally:
            self._filling = False

    def _on_image_chosen(self, name: str) -> None:
        """Another image: its own labels layer comes with it (the one used with it before, or
        "<image> labels" when it fits, else a new one), never the previous image's."""
        if self._filling:
            return
        image = self._layer(name, Image)
        labels_name = self._pairs.get(name)
        if image is not None and self._layer(labels_name or "", Labels) is None:
            own = self._layer(f"{name} labels", Labels)
            spatial = image_source(image)[1]
            labels_name = own.name if own is not None and own.data.shape == spatial else None
        self._filling = True
        try:
            self.labels_combo.setCurrentText(labels_name or NEW_LABELS)
        finally:
            self._filling = False
        self._rebuild_session()

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
        if self.session is not None and self.session.clicks:
            self.say("Layers changed: the object in progress was discarded")
        self._stop_session()
        image = self._layer(self.image_combo.currentText(), Image)
        if image is None:
            return
        source, spatial = image_source(image)
        labels = self._layer(self.labels_combo.currentText(), Labels)
        if labels is None:
            labels = self.viewer.add_labels(np.zeros(spatial, np.uint32),
                                            name=f"{image.name} labels", scale=image.scale,
                                            translate=image.translate)
            self._filling = True
            self.labels_combo.setCurrentText(labels.name)
            self._filling = False
        try:
            check_layers_match(spatial, labels.data.shape, image_scale=image.scale,
                               labels_scale=labels.scale, image_translate=image.translate,
                               labels_translate=labels.translate, labels_name=labels.name)
        except ValueError as error:
            self.warn(f"Cannot use these layers: {error}")
            return
        self.session = Session(source, labels, predictor=self.predictor,
                               threshold=self.threshold_slider.value() / 100,
                               overwrite=self.overwrite_check.isChecked(),
                               labels_name=labels.name, notify=self.say)
        self.image_layer, self.labels_layer = image, labels
        self._pairs[image.name] = labels.name
        image.events.contrast_limits.connect(self._on_contrast)
        self.preview_layer = add_preview_layer(self.viewer, labels, "RITM preview")
        self.clicks_layer = add_clicks_layer(self.viewer, labels, "RITM clicks",
                                             self.radius_spin.value())
        self.clicks_layer.events.mode.connect(self._on_clicks_mode)
        bind_keys(self.clicks_layer, {"Space": self.finish, "Enter": self.finish,
                                      "Control-Z": self.undo, "Control-Shift-Z": self._redo,
                                      "Escape": self.reset, "R": self.refine_under_cursor})
        self.viewer.layers.selection.active = self.clicks_layer
        self._on_dims()
        self._refresh()

    def _stop_session(self) -> None:
        if self.session is not None:
            self.session.reset("")
            self.session = None
        if self._propagation is not None:
            self.stop_propagation()
        if self.image_layer is not None:
            self.image_layer.events.contrast_limits.disconnect(self._on_contrast)
        own = self._own_layers()
        self.image_layer = self.labels_layer = self.clicks_layer = self.preview_layer = None
        for layer in own:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)

    def _on_layer_inserted(self, event: Any) -> None:
        self._fill_combos()
        if self.session is None and not self._rebuilding and isinstance(event.value, Image):
            self._rebuild_session()  # the widget was opened before the image

    def _on_layer_removed(self, event: Any) -> None:
        removed = event.value
        if removed in (self.image_layer, self.labels_layer, *self._own_layers()):
            self.warn(f"Layer {removed.name!r} was removed: session reset, nothing was written. "
                      "Choose the layers again to go on.")
            self._stop_session()
        if not self._rebuilding:
            self._fill_combos()

    # -- napari events -> session ------------------------------------------------------------

    def _where(self, world: Any) -> tuple[tuple[int, ...], float, float] | None:
        if self.session is None or self.labels_layer is None:
            return None
        return plane_coords(self.labels_layer, world)

    def _canvas_click(self, world: Any, *, positive: bool = True) -> None:
        """A click on the canvas: ours unless the selected layer's own tool is in use."""
        active = self.viewer.layers.selection.active
        mode = str(getattr(active, "mode", "pan_zoom"))
        if self.session is None or mode != "pan_zoom":
            return
        self.click(world, positive=positive)

    def _on_clicks_mode(self, event: Any = None) -> None:
        """The clicks layer is drawn by the widget: its napari tools (add, select, delete)
        would desynchronise it from the clicks the model uses."""
        layer = self.clicks_layer
        if layer is not None and str(layer.mode) != "pan_zoom":
            layer.mode = "pan_zoom"
            self.say("The RITM clicks layer is drawn for you: click on the image to add clicks "
                     "(left: object, right: background); Undo removes the last one")

    def click(self, world: Any, *, positive: bool = True) -> None:
        """Add a click at a world position (what a mouse click does)."""
        if self.session is None:
            self.say("Choose an image layer first")
            return
        if self.viewer.dims.ndisplay != 2:
            self.say("Switch the viewer to 2D to click")
            return
        where = self._where(world)
        if where is None:
            self.say("Click outside the image: ignored")
            return
        self._go_to(where[0])
        if self.session.click(where[1], where[2], positive):
            self._undo_armed = False
            self._pump()

    def finish(self) -> None:
        if self.session is not None:
            self.session.finish()
            self._pump()

    def undo(self) -> None:
        """Undo the last click. With no click left, a first Undo says what a second one would
        do; the second is napari's undo of the labels layer (e.g. the last committed object)."""
        if self.session is None:
            return
        if self.session.undo():
            self._undo_armed = False
        elif not self.session.busy:
            if not self._undo_armed:
                self._undo_armed = True
                last = self.session.last_commit
                what = (f" (the last object committed here: label {last[0]}"
                        f"{f' on slice {last[1]}' if last[1] else ''})" if last else "")
                self.say("No click to undo. Press Undo again to undo the last change to the "
                         f"labels layer{what}")
            else:
                self._undo_armed = False
                self.labels_layer.undo()
                self.session.forget_commit()
                self.say(f"Undid the last change to {self.labels_layer.name!r} (napari undo; "
                         "Ctrl+Shift+Z redoes it)")
        self._pump()

    def _redo(self) -> None:
        if self.labels_layer is not None:
            self.labels_layer.redo()

    def reset(self) -> None:
        if self.session is not None:
            self.session.reset()
            self._refresh()

    def refine_under_cursor(self) -> None:
        where = self._where(self.viewer.cursor.position)
        if where is None:
            self.say("Put the cursor on a label of the image to refine it")
            return
        self._go_to(where[0])
        if self.session.refine_at(where[1], where[2]):
            self._refresh()

    def refine_selected(self) -> None:
        if self.session is not None and self.session.refine(self.labels_layer.selected_label):
            self.viewer.layers.selection.active = self.clicks_layer
            self._refresh()

    def propagate(self, direction: int) -> None:
        """Carry the current object slice by slice (in the background; Stop cancels)."""
        if self.session is None or self._worker is not None:
            return
        session, prop = self.session, self.session.propagate(direction)
        self._refresh()
        if prop is None:
            return
        self._propagation, self._stopped = prop, False
        self._show_busy(True, total=max(prop.total, 1))
        self.stop_button.setEnabled(True)
        worker = create_worker(prop.steps, _ignore_errors=True)
        worker.yielded.connect(lambda step: self._apply_step(session, step))
        worker.errored.connect(lambda error: self.warn(f"Propagation failed: {error}"))
        worker.finished.connect(lambda: self._propagation_finished(session))
        self._worker = worker
        worker.start()

    def stop_propagation(self) -> None:
        if self._propagation is not None:
            self._stopped = True
            self._propagation.cancel()
        if self._worker is not None:
            self._worker.quit()

    def _apply_step(self, session: Session, step: Any) -> None:
        if session is self.session:
            session.apply_step(step)
            self.progress.setValue(step.done)

    def _propagation_finished(self, session: Session) -> None:
        self._worker, self._propagation = None, None
        self.stop_button.setEnabled(False)
        self._show_busy(False)
        if session is self.session:
            session.end_propagation(cancelled=self._stopped)
        self._pump()

    def _go_to(self, key: tuple[int, ...]) -> None:
        if self.session is not None and key != self.session.key:
            self.session.set_slice(key)
            self._refresh()

    def _on_dims(self, event: Any = None) -> None:
        where = self._where(self.viewer.dims.point)
        if where is not None:
            self._go_to(where[0])

    def _on_contrast(self, event: Any = None) -> None:
        if self.session is not None and self.image_layer is not None:
            self.session.set_contrast_limits(tuple(self.image_layer.contrast_limits))

    def _on_threshold(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        if self.session is not None:
            self.session.set_threshold(value / 100)
            self._refresh()

    def _on_overwrite(self, on: bool) -> None:
        if self.session is not None:
            self.session.overwrite = on

    # -- background predictions --------------------------------------------------------------

    def _pump(self) -> None:
        """Start the next queued prediction if none is running, and redraw."""
        job = self.session.pump() if self.session is not None and self._worker is None else None
        self._refresh()
        if job is None:
            return
        session = self.session
        worker = create_worker(job.run, _ignore_errors=True)
        worker.returned.connect(lambda result: session.complete(job, result))
        worker.errored.connect(lambda error: session.fail(job, error))
        worker.finished.connect(self._job_finished)
        self._worker = worker
        worker.start()

    def _job_finished(self) -> None:
        self._worker = None
        self._pump()

    def _refresh(self) -> None:
        """Draw the session's clicks and preview; select the latest committed id for painting."""
        session = self.session
        if session is None or self.clicks_layer is None or self.preview_layer is None:
            return
        draw_clicks(self.clicks_layer, session.clicks, session.key, self.radius_spin.value())
        draw_preview(self.preview_layer, self.labels_layer, session.key, session.preview_window)
        committed = session.last_committed
        if committed is not None and committed != self._selected:
            self._selected = self.labels_layer.selected_label = committed
