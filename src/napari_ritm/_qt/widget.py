"""The napari dock widget: a thin Qt shell around :class:`napari_ritm.session.Session`.

It translates napari events (mouse clicks on the canvas, key presses, slice changes, layer
removal) into session calls and session results into layer updates; all segmentation logic lives
in the session. Model loading (:mod:`napari_ritm._qt.model_panel`), prediction and propagation run
in ``thread_worker`` threads, one predictor call at a time, so the viewer never freezes; the
long tasks also show in napari's activity dock (:mod:`napari_ritm._qt.activity`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_info, show_warning

from napari_ritm._qt.activity import Activity
from napari_ritm._qt.adapt_panel import AdaptPanel
from napari_ritm._qt.controls import RITMControls
from napari_ritm._qt.keys import load_keys
from napari_ritm._qt.layer_panel import LayerPanel
from napari_ritm._qt.layers import (
    click_callback,
    display_limits,
    draw_clicks,
    draw_preview,
    history_step,
    plane_coords,
)
from napari_ritm._qt.model_panel import ModelPanel
from napari_ritm._qt.proofread_panel import ProofreadPanel
from napari_ritm._qt.shortcuts import Shortcuts
from napari_ritm._qt.workers import network_worker
from napari_ritm.inference.planes import slice_text
from napari_ritm.session import Session
from napari_ritm.session.describe import intensity_note, object_text

if TYPE_CHECKING:
    import napari

class RITMWidget(RITMControls):
    """Click-based segmentation dock: pick an image and a Labels layer, click, finish.

    In: ``napari_viewer``; the image layer (2D/3D/time, gray/RGB/multichannel, any dtype, numpy
    or dask) and a Labels layer of the same pixel grid (or a new one). Out: objects written into
    the Labels layer through ``data_setitem`` (napari's Ctrl+Z undoes them), clicks in a Points
    layer and the current object's mask in a preview Labels layer.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        self.keys, keys_note = load_keys()
        super().__init__(self.keys)
        self.proofread = ProofreadPanel(self, self.keys)
        self.adapt = AdaptPanel(self)
        self.models = ModelPanel(self)
        for row in self.proofread.rows():
            self.existing_layout.addLayout(row)
        self._advance_check = False  # a checked label is being finished: show the next then
        self.viewer = napari_viewer
        self._worker: Any = None  # the one prediction/propagation worker
        self._propagation: Any = None
        self._busy: set[str] = set()
        self._activity = Activity()  # the long tasks' bars in napari's activity dock
        self._alive = True
        self._stopped = False  # the user pressed Stop during the running propagation
        self._selected: int | None = None
        self._watched: Any = None  # the selected layer, whose tool changes the state line shows
        self._drawing_clicks = False  # the widget itself is redrawing the clicks layer
        self._drawn_clicks: tuple | None = None  # (slice, clicks, marker size) on the layer
        self._drawn_preview: tuple | None = None  # the session's preview_token drawn
        self._undo_armed = False  # Undo with no click asked once: the next one undoes a commit
        self._connect()
        self._bind_viewer()
        self.layers = LayerPanel(self)
        self.layers.start()
        if keys_note:  # (the model's loading takes the status line next: also a notification)
            self.say(keys_note)
            show_info(keys_note)
        self.models.load_model("default")

    def _connect(self) -> None:
        self.finish_button.clicked.connect(self.finish)
        self.undo_button.clicked.connect(self.undo)
        self.reset_button.clicked.connect(self.reset)
        self.refine_cursor_button.clicked.connect(self.refine_under_cursor)
        self.refine_selected_button.clicked.connect(self.refine_selected)
        self.up_button.clicked.connect(lambda: self.propagate(1))
        self.down_button.clicked.connect(lambda: self.propagate(-1))
        self.whole_button.clicked.connect(self.whole_object)
        self.stop_button.clicked.connect(self.stop_propagation)
        self.record_button.clicked.connect(self._on_save_record)
        self.threshold_slider.valueChanged.connect(self._on_threshold)
        self.marker_spin.valueChanged.connect(lambda _: self.refresh())
        self.overwrite_check.toggled.connect(self._on_overwrite)

    def _bind_viewer(self) -> None:
        """Mouse and keys on the viewer, not on one layer: they work whichever layer is
        selected (unless that layer's own tool uses the click or key)."""
        viewer = self.viewer
        viewer.dims.events.point.connect(self._on_dims)
        viewer.layers.selection.events.active.connect(self._on_active_layer)
        callback = click_callback(self._canvas_click)
        callbacks = viewer.mouse_drag_callbacks
        callbacks.append(callback)
        actions = {"finish": self.finish, "undo": self.undo, "redo": self.redo,
                   "reset": self.reset,
                   "refine": self.refine_under_cursor, "propagate_up": lambda: self.propagate(1),
                   "propagate_down": lambda: self.propagate(-1),
                   "whole_object": self.whole_object,
                   "labels_undo": self.labels_undo,
                   "clicks_edit": lambda: self.layers.restore_clicks_mode(),
                   "split": self.proofread.split,
                   "delete_label": self.proofread.delete_under_cursor,
                   "check_next": self.proofread.next_label}
        self.shortcuts = Shortcuts(viewer, self.keys, actions,
                                   lambda: self.session is not None and bool(self.session.clicks))

        def unbind(*_: Any) -> None:
            self._alive = False  # workers still running must not touch the deleted widgets
            self._activity.stop()
            if callback in callbacks:
                callbacks.remove(callback)
            self.shortcuts.close()

        self.destroyed.connect(unbind)

    def _on_active_layer(self, event: Any = None) -> None:
        """Another layer is selected: follow its tool changes too (a brush or transform tool
        takes the canvas clicks; the state line says so)."""
        if self._watched is not None:
            self._watched.events.mode.disconnect(self.refresh)
        self._watched = self.viewer.layers.selection.active
        if self._watched is not None and hasattr(self._watched.events, "mode"):
            self._watched.events.mode.connect(self.refresh)
        else:
            self._watched = None
        self.refresh()

    # read-only: the session on the chosen layers (None while they are missing or do not fit)
    # and its layers, which widget.layers (LayerPanel) owns
    session = property(lambda self: self.layers.session)
    image_layer = property(lambda self: self.layers.image_layer)
    labels_layer = property(lambda self: self.layers.labels_layer)
    clicks_layer = property(lambda self: self.layers.clicks_layer)
    preview_layer = property(lambda self: self.layers.preview_layer)

    def controls(self) -> list:
        """Every control a user can operate (for checks that each explains itself)."""
        return [*super().controls(), *self.proofread.buttons()]

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
        return self._worker is None and not self.models.loading and not busy

    def set_busy(self, reason: str, on: bool, *, total: int = 0) -> None:
        """Show the busy bar while anything (``reason``: model, predict, propagate, adapt,
        threshold) runs: moving for a model or a click, counting ``total`` steps for the long
        tasks, which napari's activity dock also shows."""
        (self._busy.add if on else self._busy.discard)(reason)
        if not self._alive:
            return
        if on:
            self.progress.setRange(0, total)  # (0, 0): an indeterminate, moving bar
            self.progress.setValue(0)
            self._activity.start(reason, total)
        else:
            self._activity.stop(reason)
        self.progress.setVisible(bool(self._busy))
        self.refresh()

    def show_progress(self, reason: str, done: int, total: int | None = None,
                      message: str | None = None) -> None:
        """Say ``message`` and advance the bar of the long task ``reason`` here and in napari's
        activity dock. In that order: napari's bar handles pending events, among them perhaps
        the task's outcome, whose message must stay."""
        if message is not None:
            self.say(message)
        if total is not None:
            self.progress.setRange(0, total)
        self.progress.setValue(done)
        self._activity.update(reason, done, total)

    # -- napari events -> session ------------------------------------------------------------

    def where(self, world: Any) -> tuple[tuple[int, ...], float, float] | None:
        if self.session is None or self.labels_layer is None:
            return None
        return plane_coords(self.labels_layer, world)

    def _click_target(self) -> str | None:
        """None when canvas clicks reach the session, else the layer whose tool takes them."""
        active = self.viewer.layers.selection.active
        mode = str(getattr(active, "mode", "pan_zoom"))
        return None if active is None or mode == "pan_zoom" else f"{active.name!r} ({mode})"

    def _canvas_click(self, world: Any, *, positive: bool = True, alt: bool = False) -> None:
        if self._click_target() is not None:
            return
        if alt:  # Alt+click: choose labels to merge
            self.proofread.pick(world)
        else:
            self.click(world, positive=positive)

    def click(self, world: Any, *, positive: bool = True) -> None:
        """Add a click at a world position (what a mouse click does)."""
        if self.session is None:
            self.say("No image to segment: choose the image and labels layers in the Data box "
                     "first")
            return
        self.say("")  # the last action's message is now old
        if self.viewer.dims.ndisplay != 2:
            self.say("Switch the viewer to 2D to click")
            return
        where = self.where(world)
        if where is None:
            self.say("Click outside the image: ignored")
            return
        self.go_to(where[0])
        if self.session.click(where[1], where[2], positive):
            self._undo_armed = False
            self._pump()

    def finish(self) -> None:
        if self.session is not None:
            self._advance_check = self.proofread.active  # once written, the next label
            self.session.finish()
            self._pump()

    def undo(self) -> None:
        """Undo the last click. With no click left, a first Undo says what a second one would
        do; the second is napari's undo of the labels layer (e.g. the last committed object)."""
        if self.session is None:
            return
        if self.session.undo():
            self._undo_armed = False
        elif not self.session.busy and not self._undo_armed:
            self._undo_armed = True
            last = self.session.last_commit
            what = (f" (the last object committed here: label {last[0]}"
                    f"{' on ' + slice_text(last[1]) if last[1] else ''})" if last else "")
            self.say(f"No click to undo. Press Undo again to undo the last change to the labels "
                     f"layer{what}")
        elif not self.session.busy:
            self.labels_undo()
        self._pump()

    def labels_undo(self) -> None:
        """napari's undo of the labels layer, now (e.g. the last committed object)."""
        if self.session is None or self.session.busy:
            return
        self._undo_armed = False
        if not history_step(self.labels_layer, "undo"):
            self.say(f"Nothing to undo in {self.labels_layer.name!r}")
            return
        self.session.labels_undone()
        self.say(f"Undid the last change to {self.labels_layer.name!r} (napari undo; "
                 "Ctrl+Shift+Z redoes it)")

    def _on_save_record(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        if self.session is None:
            self.say("Nothing to save yet: choose an image and segment something")
            return
        default = f"{self.labels_layer.name}.ritm.json"
        path, _ = QFileDialog.getSaveFileName(self, "Save the record", default,
                                              "napari-ritm record (*.json)")
        if path:
            self.save_record(path)

    def save_record(self, path: str) -> None:
        """Write the session's record (see :mod:`napari_ritm.session.record`) to ``path``."""
        try:
            self.session.save_record(path)
        except OSError as error:
            self.warn(f"Could not save the record: {error}")
            return
        self.say(f"Record saved to {path}: `napari-ritm replay {path} --image IMAGE --out "
                 "LABELS.tif` rebuilds these labels")

    def redo(self) -> None:
        """napari's redo of the labels layer (after an Undo that took back a commit)."""
        if self.labels_layer is None:
            return
        if not history_step(self.labels_layer, "redo"):
            self.say(f"Nothing to redo in {self.labels_layer.name!r}")
            return
        if self.session is not None:
            self.session.labels_redone()
        self.say(f"Redid the last undone change to {self.labels_layer.name!r}")

    def reset(self) -> None:
        if self.session is not None:
            self.session.reset()
            self.refresh()

    def refine_under_cursor(self) -> None:
        where = self.where(self.viewer.cursor.position)
        if where is None:
            self.say("Put the cursor on a label of the image to refine it")
            return
        self.go_to(where[0])
        if self.session.refine_at(where[1], where[2]):
            self.refresh()

    def refine_selected(self) -> None:
        if self.session is not None and self.session.refine(self.labels_layer.selected_label):
            self.viewer.layers.selection.active = self.clicks_layer
            self.refresh()

    def propagate(self, direction: int) -> None:
        """Carry the current object slice by slice (in the background; Stop cancels)."""
        if self.session is not None and self._worker is None:
            self._run_propagation(self.session.stacks.propagate(direction))

    def whole_object(self) -> None:
        """Finish the object here and propagate it up, then down (in the background)."""
        if self.session is not None and self._worker is None:
            self._run_propagation(self.session.stacks.propagate_both())

    def _run_propagation(self, run: Any) -> None:
        session = self.session
        self.refresh()
        if run is None:
            return
        self._propagation, self._stopped = run, False
        self.set_busy("propagate", True, total=max(run.total, 1))
        self.stop_button.setEnabled(True)
        worker = network_worker(
            run.steps, yielded=lambda step: self._apply_step(session, step),
            errored=lambda error: self.warn(f"Propagation failed: {error}"),
            finished=lambda: self._propagation_finished(session))
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
            session.stacks.apply_step(step)
            self.show_progress("propagate", step.done)

    def _propagation_finished(self, session: Session) -> None:
        self._worker, self._propagation = None, None
        if not self._alive:
            return
        self.stop_button.setEnabled(False)
        if session is self.session:
            session.stacks.end(cancelled=self._stopped)
        self.set_busy("propagate", False)
        self._pump()

    def go_to(self, key: tuple[int, ...]) -> None:
        if self.session is not None and key != self.session.key:
            self.session.set_slice(key)
            self.refresh()

    def _on_dims(self, event: Any = None) -> None:
        where = self.where(self.viewer.dims.point)
        if where is not None:
            self.go_to(where[0])

    def _on_contrast(self, event: Any = None) -> None:
        if self.session is not None and self.image_layer is not None and not self.image_layer.rgb:
            self.session.set_contrast_limits(display_limits(self.image_layer))
            self.say(self.intensity_note())

    def intensity_note(self) -> str:
        """What intensity range the model sees on the slice in view, and why."""
        return "" if self.session is None else intensity_note(self.session)

    def _on_threshold(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        if self.session is not None:
            self.session.set_threshold(value / 100)
            self.refresh()

    def _on_overwrite(self, on: bool) -> None:
        if self.session is not None:
            self.session.set_overwrite(on)

    # -- background predictions --------------------------------------------------------------

    def _pump(self) -> None:
        """Start the next queued prediction if none is running, and redraw."""
        job = self.session.pump() if self.session is not None and self._worker is None else None
        if job is None:
            self.refresh()
            if self.session is not None and self.session.stacks.wants_repropagation:
                self._run_propagation(self.session.stacks.repropagate())  # a corrected plane
            elif self._advance_check and self.session is not None and not self.session.busy:
                self._advance_check = False
                self.proofread.finished_one()
            return
        session = self.session
        worker = network_worker(job.run, returned=lambda result: session.complete(job, result),
                                errored=lambda error: session.fail(job, error),
                                finished=self._job_finished)
        self._worker = worker
        self.set_busy("predict", True)
        worker.start()

    def _job_finished(self) -> None:
        self._worker = None
        if self._alive:
            self.set_busy("predict", False)
            self._pump()

    def refresh(self) -> None:
        """Draw the session's clicks and preview and its state line; select the latest
        committed id for painting."""
        session = self.session
        if session is None or self.clicks_layer is None or self.preview_layer is None:
            self.state_label.setText("Choose an image layer to start")
            return
        clicks = (session.key, session.clicks, self.marker_spin.value())
        drawn = self._drawn_clicks
        if clicks != drawn:
            self._drawing_clicks = True
            try:
                draw_clicks(self.clicks_layer, clicks[1], clicks[0], clicks[2],
                            drawn[1] if drawn and drawn[::2] == clicks[::2] else ())
            finally:
                self._drawing_clicks = False
            self._drawn_clicks = clicks
        token, drawn = session.preview_token, self._drawn_preview
        if drawn is None or token[:2] != drawn[:2] or any(
            a is not b for a, b in zip(token[2:], drawn[2:])
        ):
            draw_preview(self.preview_layer, self.labels_layer, session.key,
                         session.preview_window)
            self._drawn_preview = token
        self.state_label.setText(self._state_text())
        committed = session.last_committed
        if committed is not None and committed != self._selected:
            self._selected = self.labels_layer.selected_label = committed

    def _state_text(self) -> str:
        text = object_text(self.session)
        if "predict" in self._busy or "model" in self._busy:
            text += " · working..."
        target = self._click_target()
        if target is not None:
            text += (f"\nClicks now go to the layer {target}: select 'RITM clicks' or that "
                     "layer's pan/zoom tool to click objects")
        return text
