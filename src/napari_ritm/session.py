"""The interactive segmentation session: clicks -> preview -> committed labels (pure Python, no Qt).

A :class:`Session` holds one image, one labels array and the object being segmented on the plane
in view. The widget only forwards user actions (``click``, ``undo``, ``finish``, ``reset``,
``refine``, ``set_slice``, ``propagate``) and draws ``preview`` and ``clicks``.

Threading: call every method from one thread (napari's GUI thread). Predictor work is handed
out by :meth:`Session.pump` as a :class:`PredictJob`; ``job.run()`` may run in a worker thread
and its outcome comes back through :meth:`Session.complete` / :meth:`Session.fail`. Clicks,
undos and finishes made meanwhile wait in a queue, in order; :meth:`Session.run_pending` does
it all synchronously (tests, scripts).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from napari_ritm.editing import (
    LabelsLike,
    check_layers_match,
    commit_plane,
    next_label_id,
    read_plane,
)
from napari_ritm.inference.clicks import Click
from napari_ritm.planes import ImageSource, PredictJob, PredictorLike, slice_text
from napari_ritm.propagation import Propagation
from napari_ritm.record import ArrayLabels, fingerprint, new_record
from napari_ritm.session_propagation import PropagationActions
from napari_ritm.session_queue import PredictionQueue, _full

__all__ = ["ImageSource", "Session"]


class Session(PredictionQueue, PropagationActions):
    """Segments objects one at a time into ``labels`` from clicks on ``image``.

    ``image``: an :class:`ImageSource` or an array (numpy, dask, zarr) with spatial shape
    (..., H, W) (an extra last axis of 3 or 4 is read as RGB); ``labels``: a napari ``Labels``
    layer or an integer array (numpy) of that shape, written only through ``data_setitem``
    (arrays are written in place, with undo: :class:`~napari_ritm.record.ArrayLabels`);
    ``predictor``: a :class:`PredictorLike` or None until a model is loaded (clicks wait in the
    queue). ``threshold`` turns probabilities into the preview; ``overwrite`` lets objects take
    pixels of other labels; ``notify`` receives user messages.

    State in view: ``key`` (leading indices of the plane), ``clicks``, ``preview`` ((H, W) bool
    or None), ``object_id`` (None until the object is first committed or when refining a label).
    ``record``: every action applied (:class:`~napari_ritm.record.Record`; ``save_record``
    writes it) unless ``record_actions`` is False.
    """

    def __init__(
        self,
        image: ImageSource,
        labels: LabelsLike,
        *,
        predictor: PredictorLike | None = None,
        threshold: float = 0.49,
        overwrite: bool = False,
        labels_name: str = "labels",
        notify: Callable[[str], None] | None = None,
        record_actions: bool = True,
    ) -> None:
        if not hasattr(labels, "data_setitem"):
            labels = ArrayLabels(np.asarray(labels))
        if not isinstance(image, ImageSource):
            image = ImageSource(image, rgb=image.ndim == labels.data.ndim + 1
                                and image.shape[-1] in (3, 4))
        check_layers_match(image.shape, labels.data.shape, labels_name=labels_name)
        self.image = image
        self.labels = labels
        self.record = new_record(image, labels.data) if record_actions else None
        self.predictor = predictor
        self.threshold = float(threshold)
        self.overwrite = bool(overwrite)
        self.labels_name = labels_name
        self._notify = notify
        self.last_message = ""
        self.last_committed: int | None = None  # id of the latest committed object
        self._commits: list[tuple[int, tuple[int, ...]]] = []  # (label, slice) of each change
        self._undone_commits: list[tuple[int, tuple[int, ...]]] = []  # for napari's redo
        self._key: tuple[int, ...] = (0,) * (len(image.shape) - 2)
        self._generation = 0
        self._queue: deque[tuple[str, Click | None]] = deque()
        self._running: PredictJob | None = None
        self._propagation: Propagation | None = None
        self._propagations = 0  # numbers each propagation, so late steps of an old one are ignored
        self._propagated_label = 0
        self._propagation_written = self._propagation_applied = 0
        self._propagation_start: tuple = ((), 1)
        self._plane_cache: tuple[Any, np.ndarray] | None = None
        self._predictor_holds: tuple[Any, Any] | None = None
        self._object_id: int | None = None
        self._end_object()
        self._log("threshold", value=self.threshold)
        self._log("overwrite", value=self.overwrite)
        if predictor is not None:
            self.set_predictor(predictor)

    # -- what the widget draws ---------------------------------------------------------------

    @property
    def key(self) -> tuple[int, ...]:
        """Leading indices of the plane in use (empty for a 2D image)."""
        return self._key

    @property
    def plane_shape(self) -> tuple[int, int]:
        return self.image.shape[-2], self.image.shape[-1]

    @property
    def object_id(self) -> int | None:
        return self._object_id

    @property
    def clicks(self) -> tuple[Click, ...]:
        """Clicks of the current object on this plane, including those still queued."""
        queued = tuple(c for kind, c in self._queue if kind == "click")
        running = self._running.clicks[-1:] if self._running is not None else ()
        return (*self._clicks, *running, *queued)

    @property
    def probs(self) -> np.ndarray | None:
        """The latest probabilities (H, W) float32, None before the first click."""
        return _full(self._probs)

    @property
    def preview(self) -> np.ndarray | None:
        """The object's mask on this plane (H, W) bool: probabilities above ``threshold``, or
        the label being refined before any click; None when there is nothing to show."""
        window = self.preview_window
        if window is None:
            return None
        slices, mask = window
        if mask.shape == self.plane_shape:
            return mask
        full = np.zeros(self.plane_shape, dtype=bool)
        full[slices] = mask
        return full

    @property
    def preview_window(self) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """The preview inside the window that holds it: (row and column slices of the plane,
        (h, w) bool), all False outside; the whole plane for predictors without windows."""
        if self._probs is not None:
            if hasattr(self._probs, "roi"):  # a window predictor's LocalProbs
                return self._probs.slices, self._probs.probs > self.threshold
            return (slice(None), slice(None)), self._probs > self.threshold
        if self._initial is not None:
            return (slice(None), slice(None)), self._initial > 0.5
        return None

    @property
    def busy(self) -> bool:
        """A prediction or a propagation is running, or operations are queued."""
        return self._running is not None or self._propagation is not None or bool(self._queue)

    # -- settings ----------------------------------------------------------------------------

    def set_threshold(self, threshold: float) -> None:
        """Re-threshold the cached probabilities (no prediction)."""
        self.threshold = float(threshold)
        self._log("threshold", value=self.threshold)

    def set_overwrite(self, on: bool) -> None:
        """Whether objects may take pixels of other labels from now on."""
        self.overwrite = bool(on)
        self._log("overwrite", value=self.overwrite)

    def set_predictor(self, predictor: PredictorLike | None, info: dict | None = None) -> None:
        """Use ``predictor`` from the next click on (model, mode or settings changed). ``info``
        says how to build it again, for the record: ``{"model": name or path, "sha256",
        "mode", "settings": {...}}`` (:func:`napari_ritm.record.predictor_from_entry`);
        default: the ``info`` that ``make_predictor`` gives its predictors."""
        self.predictor = predictor
        self._predictor_holds = None
        info = info or getattr(predictor, "info", None) or {"model": None}
        self._log("predictor", **info)

    def set_contrast_limits(self, limits: tuple[float, float] | None) -> None:
        """The image's display range changed: the next click normalises with it."""
        limits = None if limits is None else (float(limits[0]), float(limits[1]))
        self.image = replace(self.image, contrast_limits=limits)
        self._log("contrast", value=limits)

    def save_record(self, path: str | Path) -> None:
        """Write the record of this session (JSON) to ``path``."""
        if self.record is None:
            raise RuntimeError("this session does not record its actions")
        self.record.image["fingerprint"] = fingerprint(self.image.data)
        self.record.save(path, self.labels.data)

    @property
    def last_commit(self) -> tuple[int, tuple[int, ...]] | None:
        """(label, slice key) of the newest commit of this session not undone, or None."""
        return self._commits[-1] if self._commits else None

    def committed_objects(self) -> dict[tuple[int, ...], set[int]]:
        """Slice key -> the labels this session wrote there (clicked or propagated, not undone)."""
        out: dict[tuple[int, ...], set[int]] = {}
        for label, key in self._commits:
            out.setdefault(key, set()).add(label)
        return out

    def labels_undone(self) -> None:
        """The labels layer's last change was undone (napari's undo, e.g. the newest commit)."""
        if self._commits:
            self._undone_commits.append(self._commits.pop())
        self._log("labels_undo")
        self._say("")

    def labels_redone(self) -> None:
        """The labels layer redid its last undone change (napari's redo)."""
        if self._undone_commits:
            self._commits.append(self._undone_commits.pop())
        self._log("labels_redo")

    # -- user actions ------------------------------------------------------------------------

    def click(self, y: float, x: float, positive: bool) -> bool:
        """Queue a click at plane pixel (y, x) (rounded to the nearest pixel)."""
        row, col = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
        h, w = self.plane_shape
        if not (0 <= row < h and 0 <= col < w):
            self._say(f"Click at ({y:.1f}, {x:.1f}) is outside the {h}x{w} image: ignored")
            return False
        if self._propagation is not None:
            self._say("Propagation is running: stop it before clicking")
            return False
        self._queue.append(("click", Click(float(row), float(col), bool(positive))))
        return True

    def undo(self) -> bool:
        """Undo the newest click (a queued one is simply dropped). False: no click to undo."""
        if self._queue and self._queue[-1][0] == "click":
            self._queue.pop()
            return True
        if not self.clicks:
            return False
        self._queue.append(("undo", None))
        return True

    def finish(self) -> None:
        """Commit the object on this plane (after the queued clicks) and start a new object."""
        self._queue.append(("finish", None))

    def reset(self, message: str = "Object reset: its clicks were discarded") -> None:
        """Drop the current object's uncommitted clicks and preview now (running work too)."""
        self._cancel_pending()
        if self._propagation is not None:
            self._propagation.cancel()
        self._end_object()
        self._log("reset")
        self._say(message)

    def set_slice(self, key: Sequence[int]) -> None:
        """Move to the plane at leading indices ``key``. Clicks still waiting are dropped; an
        object with a preview here is committed first, and keeps its id on the new plane."""
        key = tuple(int(k) for k in key)
        lead = self.image.shape[:-2]
        if len(key) != len(lead) or not all(0 <= k < n for k, n in zip(key, lead)):
            raise ValueError(f"slice {key} is outside the stack {lead}")
        if key == self._key:
            return
        dropped = self._cancel_pending()
        if dropped:
            self._say(f"{dropped} click(s) still waiting for the model were dropped: "
                      "the slice changed")
        if self._clicks and not self._commit_here():
            self._say(f"{self.last_message}; the object on {slice_text(self._key)} was discarded")
        object_id = self._object_id
        self._end_object()
        self._key = key
        self._log("slice", key=list(key))
        if object_id is not None:
            self._start_object(object_id)

    def refine(self, label: int) -> bool:
        """Start editing existing ``label`` on this plane: its mask becomes the initial mask."""
        label = int(label)
        if label <= 0:
            self._say("No label to refine here (background)")
            return False
        if self.busy or self._clicks:
            self._say("Finish or reset the current object before refining another label")
            return False
        self._end_object()
        self._start_object(label)
        self._log("refine", key=list(self._key), label=label)
        found = self._initial is not None
        self._say(f"Refining label {label}" + ("" if found else " (no pixels on this slice yet)"))
        return True

    def refine_at(self, y: float, x: float) -> bool:
        """Refine the label under plane pixel (y, x)."""
        row, col = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
        h, w = self.plane_shape
        if not (0 <= row < h and 0 <= col < w):
            self._say("The cursor is outside the image")
            return False
        return self.refine(int(read_plane(self.labels, self._key)[row, col]))

    # -- internals ---------------------------------------------------------------------------

    def _log(self, op: str, **fields: Any) -> None:
        if self.record is not None:
            self.record.add(op, **fields)

    def _say(self, message: str) -> None:
        self.last_message = message
        if message and self._notify is not None:
            self._notify(message)

    def _changed(self, label: int, key: tuple[int, ...]) -> None:
        """Label ``label`` was written on slice ``key``: one new undo step of the labels layer
        (napari drops its redo history then)."""
        self._commits.append((label, key))
        self._undone_commits.clear()

    def _end_object(self) -> None:
        self._object_id = None
        self._initial: np.ndarray | None = None
        self._clicks: list[Click] = []
        self._steps: list = []  # undo records of the applied clicks (session_queue._Step)
        self._probs: np.ndarray | None = None
        self._state: Any = None
        self._state_owner: Any = None

    def _start_object(self, label: int) -> None:
        """Continue object ``label`` on this plane: its pixels here are the initial mask."""
        self._end_object()
        self._object_id = label
        mine = read_plane(self.labels, self._key) == label
        self._initial = mine.astype(np.float32) if mine.any() else None

    def _undo_applied(self) -> None:
        if not self._steps:
            return
        self._log("undo")
        step = self._steps.pop()
        self._clicks.pop()
        self._probs, self._state = step.probs_before, step.state_before
        self._state_owner = step.state_owner_before

    def _commit_here(self) -> bool:
        """Write the preview on this plane under the object's id (allocated if new)."""
        mask = self.preview
        if mask is None:
            return True
        label = self._object_id
        if label is None:
            if not mask.any():
                return True
            label = next_label_id(self.labels.data)
        try:
            changed = commit_plane(self.labels, self._key, mask, label, overwrite=self.overwrite,
                                   layer_name=self.labels_name)
        except (ValueError, TypeError) as error:  # LabelDtypeError, read-only labels data
            self._say(f"Not committed: {error}")
            return False
        self._object_id = self.last_committed = label
        if changed:
            self._changed(label, self._key)
        where = f" on {slice_text(self._key)}" if self._key else ""
        self._say(f"Label {label} committed{where} ({changed} pixel(s) changed)")
        return True

    def _finish_now(self) -> None:
        self._log("finish")
        if self._clicks and not self._commit_here():
            return  # keep the object: the user can fix the labels dtype and finish again
        self._end_object()
