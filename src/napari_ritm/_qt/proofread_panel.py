"""Proofreading in the dock: split, merge, delete labels, and **Check labels**, which walks through
the labels of the layer, the likeliest wrong first.

:class:`ProofreadPanel` is owned by the dock widget (:class:`napari_ritm._qt.widget.RITMWidget`)
and uses only its public members: ``viewer``, ``session``, ``labels_layer``, ``say``,
``set_busy``, ``show_progress``, ``refresh``, ``go_to`` and ``models.new_predictor``. The actions
themselves are :mod:`napari_ritm.session.proofread`'s.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QHBoxLayout, QPushButton

from napari_ritm._qt.keys import key_text
from napari_ritm._qt.workers import network_worker
from napari_ritm.session.editing import read_plane
from napari_ritm.session.proofread import Proofreading, check_order

__all__ = ["ProofreadPanel"]


def _button(text: str, tip: str, action: str | None, keys: dict) -> QPushButton:
    key = key_text(action, keys) if action else ""
    button = QPushButton(f"{text} [{key}]" if key else text)
    button.setToolTip(tip + (f" (shortcut: {key})" if key else ""))
    return button


class ProofreadPanel:
    """The proofreading buttons (``split_button``, ``delete_button``, ``check_button``,
    ``next_button``; :meth:`rows` lays them out) and what they do. Merging is Alt+click on one
    label, then Alt+click on the other (:meth:`pick`)."""

    def __init__(self, host: Any, keys: dict) -> None:
        self.host = host
        self.split_button = _button(
            "Split off the rest", "After refining a label that holds two objects (click the "
            "other one as background): give the part you removed a label of its own (its "
            "largest piece; slivers along your object stay with it)", "split",
            keys)
        self.delete_button = _button(
            "Delete label under cursor", "Remove the label under the cursor on every slice "
            "(napari's undo brings it back)", "delete_label", keys)
        self.check_button = _button(
            "Check labels", "Go through the labels of this slice, those the model disagrees "
            "with most first: each is shown and opened for correction; Finish writes your fix "
            "and goes on, Next keeps it as it is", None, keys)
        self.next_button = _button(
            "Next label", "Keep the label being checked as it is and show the next one",
            "check_next", keys)
        self.next_button.setEnabled(False)
        self.split_button.clicked.connect(self.split)
        self.delete_button.clicked.connect(self.delete_under_cursor)
        self.check_button.clicked.connect(self.check)
        self.next_button.clicked.connect(self.next_label)
        self.queue: list[int] = []  # labels still to check, the likeliest wrong first
        self.checked = 0
        self._merge_from: int | None = None
        self._worker: Any = None
        self._stop = False
        self._done = (0, 0)  # labels checked, of how many (written by the worker)
        self._timer = QTimer()
        self._timer.timeout.connect(self._show_progress)

    def rows(self) -> list[QHBoxLayout]:
        rows = []
        for widgets in ((self.split_button, self.delete_button),
                        (self.check_button, self.next_button)):
            row = QHBoxLayout()
            for widget in widgets:
                row.addWidget(widget)
            rows.append(row)
        return rows

    def buttons(self) -> list[QPushButton]:
        return [self.split_button, self.delete_button, self.check_button, self.next_button]

    # -- split, merge, delete ------------------------------------------------------------------

    def split(self) -> None:
        if self.host.session is not None:
            Proofreading(self.host.session).split()
            self.host.refresh()

    def _label_at(self, world: Any) -> int | None:
        where = self.host.where(world)
        if where is None:
            return None
        key, y, x = where
        h, w = self.host.session.plane_shape
        row, col = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
        if not (0 <= row < h and 0 <= col < w):
            return None
        return int(read_plane(self.host.session.labels, key)[row, col])

    def pick(self, world: Any) -> None:
        """Alt+click: the first pick chooses the label to keep, the second merges into it."""
        if self.host.session is None:
            return
        label = self._label_at(world)
        if not label:
            self._merge_from = None
            self.host.say("Merge: Alt+click on a label, then Alt+click on the label to merge "
                          "into it")
            return
        if self._merge_from is None or self._merge_from == label:
            self._merge_from = label
            self.host.say(f"Merge: label {label} chosen; Alt+click on the label to merge into "
                          "it")
            return
        keep, self._merge_from = self._merge_from, None
        Proofreading(self.host.session).merge(keep, label)
        self.host.refresh()

    def delete_under_cursor(self) -> None:
        if self.host.session is None:
            return
        label = self._label_at(self.host.viewer.cursor.position)
        Proofreading(self.host.session).delete(label or 0)
        if label in self.queue:
            self.queue.remove(label)
        self.host.refresh()

    # -- Check labels --------------------------------------------------------------------------

    def check(self) -> None:
        """Order the labels of the slice in view (in the background), then show the first."""
        host = self.host
        if self._worker is not None:
            self._stop = True
            return
        if host.session is None or host.models.net is None:
            host.say("Choose an image and wait for the model before checking labels")
            return
        session = host.session
        plane = read_plane(session.labels, session.key)
        if not plane.any():
            host.say("Check labels: there is no label on this slice")
            return
        predictor, _ = host.models.new_predictor()
        reader = session.image.windows(session.key)
        self._stop = False
        worker = network_worker(
            check_order, predictor, plane, reader, threshold=session.threshold,
            on_progress=self._progress, should_stop=lambda: self._stop,
            returned=lambda checks: self._ordered(session, checks),
            errored=lambda error: host.warn(f"Checking the labels failed: {error}"),
            finished=self._check_finished)
        self._worker, self._done = worker, (0, 0)
        self._timer.start(250)
        self.check_button.setText("Stop checking")
        host.set_busy("check", True, total=int(len(np.unique(plane)) - 1))
        host.say("Checking the labels of this slice: one click on each...")
        worker.start()

    def _progress(self, done: int, total: int) -> None:  # (in the worker thread)
        self._done = (done, total)

    def _show_progress(self) -> None:
        done, total = self._done
        if total:
            self.host.show_progress("check", done, total)

    def _ordered(self, session: Any, checks: list) -> None:
        if session is not self.host.session:
            return
        self.queue = [c.label for c in checks]
        self.checked = 0
        self._agreement = {c.label: c.agreement for c in checks}
        self._spots = {c.label: (c.y, c.x) for c in checks}
        self._key = session.key
        self.show_next()

    def _check_finished(self) -> None:
        self._worker = None
        self._timer.stop()
        self.check_button.setText("Check labels")
        self.host.set_busy("check", False)

    @property
    def active(self) -> bool:
        """A check is under way (a label is shown for correction)."""
        return self.next_button.isEnabled()

    def show_next(self) -> None:
        """Open the next label of the queue for correction and centre the view on it."""
        host, session = self.host, self.host.session
        if session is None:
            return
        self.next_button.setEnabled(bool(self.queue))
        if not self.queue:
            host.say(f"Check labels: done, {self.checked} label(s) checked")
            return
        label = self.queue.pop(0)
        self.checked += 1
        host.go_to(self._key)
        y, x = self._spots[label]
        world = host.labels_layer.data_to_world((*self._key, y, x))
        scene = getattr(host.viewer, "scene", host.viewer)  # napari < 0.9: viewer.camera
        scene.camera.center = tuple(world)[-2:]
        session.reset("")
        session.refine(label)
        host.refresh()
        host.say(f"Check labels: label {label}, {self.checked} of {self.checked + len(self.queue)}"
                 f" (the model agrees {self._agreement[label]:.0%}). Click to correct it and "
                 "Finish, keep it with Next, or delete it")

    def stop(self) -> None:
        """The session ended (layers changed): forget the check under way."""
        self.queue, self._merge_from = [], None
        self.next_button.setEnabled(False)
        self._stop = True

    def next_label(self) -> None:
        """Keep the label shown as it is and go on."""
        if self.active:
            self.show_next()

    def finished_one(self) -> None:
        """The user finished (wrote) the label being checked: go on."""
        if self.active:
            self.show_next()
