"""The interactive segmentation session: clicks -> preview -> committed labels (pure Python, no Qt).

A :class:`Session` holds one image, one labels array and the object being segmented on the plane
in view. The widget only forwards user actions (``click``, ``undo``, ``finish``, ``reset``,
``refine``, ``set_slice``, ``propagate``) and draws ``preview`` and ``clicks``.

Threading: call every method from one thread (napari's GUI thread). Predictor work is handed
out by :meth:`Session.pump` as a :class:`~napari_ritm.session.jobs.PredictJob`; ``job.run()``
may run in a worker thread and its outcome comes back through :meth:`Session.complete` /
:meth:`Session.fail`. Clicks, undos and finishes made meanwhile wait in the session's
:class:`~napari_ritm.session.queue.ActionQueue`, in order; :meth:`Session.run_pending` does it
all synchronously (tests, scripts). The object in progress is a
:class:`~napari_ritm.session.current.CurrentObject`; a propagation, a
:class:`~napari_ritm.session.stack.PropagationRun`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from napari_ritm.inference.base import ClickPredictor, as_local
from napari_ritm.inference.clicks import DEFAULT_THRESHOLD, Click
from napari_ritm.inference.planes import ImageSource, slice_text
from napari_ritm.session.current import CurrentObject
from napari_ritm.session.editing import (
    CommitLog,
    LabelsLike,
    check_layers_match,
    commit_plane,
    next_label_id,
    read_plane,
)
from napari_ritm.session.jobs import JobResult, PredictJob
from napari_ritm.session.queue import ActionQueue
from napari_ritm.session.record import ArrayLabels, fingerprint, new_record
from napari_ritm.session.stack import StackPropagation

__all__ = ["Session"]


class Session:
    """Segments objects one at a time into ``labels`` from clicks on ``image``.

    ``image``: an :class:`~napari_ritm.inference.planes.ImageSource` or an array (numpy, dask,
    zarr) with spatial shape (..., H, W) (an extra last axis of 3 or 4 is read as RGB);
    ``labels``: a napari ``Labels`` layer or an integer array (numpy) of that shape, written only
    through ``data_setitem`` (arrays are written in place, with undo:
    :class:`~napari_ritm.session.record.ArrayLabels`); ``predictor``: a
    :class:`~napari_ritm.inference.base.ClickPredictor` or None until a model is loaded (clicks
    wait in the queue). ``threshold`` turns probabilities into the preview; ``overwrite`` lets
    objects take pixels of other labels; ``notify`` receives user messages.

    State in view: ``key`` (leading indices of the plane), ``clicks``, ``preview`` ((H, W) bool
    or None), ``object_id`` (None until the object is first committed or when refining a label).
    ``record``: every action applied (:class:`~napari_ritm.session.record.Record`; ``save_record``
    writes it) unless ``record_actions`` is False.
    """

    def __init__(
        self,
        image: ImageSource,
        labels: LabelsLike,
        *,
        predictor: ClickPredictor | None = None,
        threshold: float = DEFAULT_THRESHOLD,
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
        self.predictor: ClickPredictor | None = None
        self.threshold = float(threshold)
        self.overwrite = bool(overwrite)
        self.labels_name = labels_name
        self._notify = notify
        self.last_message = ""
        self.last_committed: int | None = None  # id of the latest committed object
        self._commits = CommitLog()
        self._key: tuple[int, ...] = (0,) * (len(image.shape) - 2)
        self.queue = ActionQueue()
        self.current = CurrentObject()
        self.stacks = StackPropagation(self)  # Propagate, the whole object, corrections
        self._plane_cache: tuple[Any, Any] | None = None  # (slice and limits, its plane reader)
        self._predictor_holds: tuple[Any, Any] | None = None  # (predictor, the plane it has)
        self.log("threshold", value=self.threshold)
        self.log("overwrite", value=self.overwrite)
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
        return self.current.object_id

    @property
    def clicks(self) -> tuple[Click, ...]:
        """Clicks of the current object on this plane, including those still queued."""
        return (*self.current.clicks, *self.queue.clicks)

    @property
    def probs(self) -> np.ndarray | None:
        """The latest probabilities (H, W) float32, None before the first click."""
        return None if self.current.probs is None else self.current.probs.full()

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
        (h, w) bool), all False outside."""
        return self.current.window(self.threshold)

    @property
    def preview_token(self) -> tuple:
        """What ``preview`` is made of: (slice key, threshold, the probabilities, the initial
        mask) as objects, so that a caller can tell whether the preview may have changed."""
        return self._key, self.threshold, self.current.probs, self.current.initial

    @property
    def busy(self) -> bool:
        """A prediction or a propagation is running, or operations are queued."""
        return bool(self.queue) or self.stacks.run is not None

    # -- settings ----------------------------------------------------------------------------

    def set_threshold(self, threshold: float) -> None:
        """Re-threshold the cached probabilities (no prediction); a window predictor grows its
        windows with the mask at this threshold from the next click on."""
        self.threshold = float(threshold)
        if self.predictor is not None:
            self.predictor.follow_threshold(self.threshold)
        self.log("threshold", value=self.threshold)

    def set_overwrite(self, on: bool) -> None:
        """Whether objects may take pixels of other labels from now on."""
        self.overwrite = bool(on)
        self.log("overwrite", value=self.overwrite)

    def set_predictor(self, predictor: ClickPredictor | None, info: dict | None = None) -> None:
        """Use ``predictor`` from the next click on (model, mode or settings changed). ``info``
        says how to build it again, for the record: ``{"model": name or path, "sha256",
        "mode", "settings": {...}}`` (:func:`napari_ritm.session.replay.predictor_from_entry`);
        default: the ``info`` that ``make_predictor`` gives its predictors."""
        self.predictor = predictor
        self._predictor_holds = None
        if predictor is not None:
            predictor.follow_threshold(self.threshold)
        info = info or getattr(predictor, "info", None) or {"model": None}
        self.log("predictor", **info)

    def set_contrast_limits(self, limits: tuple[float, float] | None) -> None:
        """The image's display range changed: the next click normalises with it."""
        limits = None if limits is None else (float(limits[0]), float(limits[1]))
        self.image = replace(self.image, contrast_limits=limits)
        self.log("contrast", value=limits)

    def save_record(self, path: str | Path) -> None:
        """Write the record of this session (JSON) to ``path``."""
        if self.record is None:
            raise RuntimeError("this session does not record its actions")
        self.record.image["fingerprint"] = fingerprint(self.image.data)
        self.record.save(path, self.labels.data)

    @property
    def last_commit(self) -> tuple[int, tuple[int, ...]] | None:
        """(label, slice key) of the newest commit of this session not undone, or None."""
        return self._commits.last

    def committed_objects(self) -> dict[tuple[int, ...], set[int]]:
        """Slice key -> the labels this session wrote there (clicked or propagated, not undone)."""
        return self._commits.by_slice()

    def labels_undone(self) -> None:
        """The labels layer's last change was undone (napari's undo, e.g. the newest commit)."""
        self._commits.undone()
        self.log("labels_undo")
        self._say("")

    def labels_redone(self) -> None:
        """The labels layer redid its last undone change (napari's redo)."""
        self._commits.redone()
        self.log("labels_redo")

    # -- user actions ------------------------------------------------------------------------

    def click(self, y: float, x: float, positive: bool) -> bool:
        """Queue a click at plane pixel (y, x) (rounded to the nearest pixel)."""
        row, col = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
        h, w = self.plane_shape
        if not (0 <= row < h and 0 <= col < w):
            self._say(f"Click at ({y:.1f}, {x:.1f}) is outside the {h}x{w} image: ignored")
            return False
        if self.stacks.run is not None:
            self._say("Propagation is running: stop it before clicking")
            return False
        if not self.clicks and self.current.object_id is None and self._key:
            under = int(read_plane(self.labels, self._key)[row, col])
            objects = self.stacks.objects
            if under and under == objects.last and objects.is_propagated(
                    under, self._key):  # a plane of the object just propagated: correct it
                self.continue_object(under)
                self.current.correcting = True
                self._say(f"Correcting label {under} on {slice_text(self._key)}: Finish "
                          "propagates the correction")
        self.queue.add("click", Click(float(row), float(col), bool(positive)))
        return True

    def undo(self) -> bool:
        """Undo the newest click (a queued one is simply dropped). False: no click to undo."""
        if self.queue.drop_last_click():
            return True
        if not self.clicks:
            return False
        self.queue.add("undo")
        return True

    def finish(self) -> None:
        """Commit the object on this plane (after the queued clicks) and start a new object."""
        self.queue.add("finish")

    def reset(self, message: str = "Object reset: its clicks were discarded") -> None:
        """Drop the current object's uncommitted clicks and preview now (running work too)."""
        self.queue.cancel()
        if self.stacks.run is not None:
            self.stacks.run.cancel()
        self.current = CurrentObject()
        self.log("reset")
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
        dropped = self.queue.cancel()
        if dropped:
            self._say(f"{dropped} click(s) still waiting for the model were dropped: "
                      "the slice changed")
        if self.current.clicks and not self.commit_preview():
            self._say(f"{self.last_message}; the object on {slice_text(self._key)} was discarded")
        object_id = self.current.object_id
        self._key = key
        self.log("slice", key=list(key))
        self.current = CurrentObject()
        if object_id is not None:
            self.continue_object(object_id)

    def refine(self, label: int) -> bool:
        """Start editing existing ``label`` on this plane: its mask becomes the initial mask."""
        label = int(label)
        if label <= 0:
            self._say("No label to refine here (background)")
            return False
        if self.busy or self.current.clicks:
            self._say("Finish or reset the current object before refining another label")
            return False
        self.continue_object(label)
        self.current.correcting = self.stacks.objects.is_propagated(label, self._key)
        self.log("refine", key=list(self._key), label=label)
        found = self.current.initial is not None
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

    # -- predictions (the widget runs the jobs in a worker thread) -----------------------------

    def pump(self) -> PredictJob | None:
        """Run queued undos/finishes in order up to the next click; return that click's job.

        None when the queue is empty, a job is running, or no predictor is loaded yet.
        """
        queue = self.queue
        if queue.running is not None or self.stacks.run is not None:
            return None
        while queue.pending:
            kind, click = queue.pending[0]
            if kind == "click":
                if self.predictor is None:
                    return None
                queue.pending.popleft()
                queue.running = self._job_for(click)
                return queue.running
            queue.pending.popleft()
            if kind == "undo":
                if self.current.undo():
                    self.log("undo")
            else:
                self._finish_now()
        return None

    def complete(self, job: PredictJob, result: JobResult) -> None:
        """Apply a finished job's result (ignored when the session moved on meanwhile)."""
        if not self.queue.done(job):
            return
        cache_key = (job.key, job.source.contrast_limits)  # what the job normalised with
        self._plane_cache = (cache_key, result.plane)
        self._predictor_holds = (job.predictor, cache_key)
        click = job.clicks[-1]
        self.current.apply(click, result.probs, result.state, job.predictor)
        self.log("click", key=list(job.key), y=click.y, x=click.x, positive=click.positive)

    def fail(self, job: PredictJob, error: BaseException) -> None:
        """A job raised: reset the object cleanly and tell the user why."""
        self._predictor_holds = None
        if self.queue.done(job):
            self.reset(f"Prediction failed, object reset: {error}")

    def run_pending(self) -> None:
        """Run every queued operation synchronously in this thread."""
        while (job := self.pump()) is not None:
            try:
                result = job.run()
            except Exception as error:  # noqa: BLE001 - reported to the user, session reset
                self.fail(job, error)
            else:
                self.complete(job, result)

    def _job_for(self, click: Click) -> PredictJob:
        cache_key = (self._key, self.image.contrast_limits)
        cached = self._plane_cache
        plane = cached[1] if cached is not None and cached[0] == cache_key else None
        holds = self._predictor_holds
        needs_image = holds is None or holds[0] is not self.predictor or holds[1] != cache_key
        state, prev_mask = self.current.start_for(self.predictor)
        return PredictJob(
            predictor=self.predictor, source=self.image, key=self._key, plane=plane,
            needs_image=needs_image, state=state, clicks=(*self.current.clicks, click),
            prev_mask=prev_mask, generation=self.queue.generation,
        )

    # -- for the actions built on the session (proofreading) -----------------------------------

    def note_write(self, label: int, key: tuple[int, ...]) -> None:
        """One write (one undo step of the labels layer) was made to ``label`` on slice ``key``
        outside the click flow."""
        self._commits.add(label, key)

    def log(self, op: str, **fields: Any) -> None:
        """Add an action to the record (if the session keeps one)."""
        if self.record is not None:
            self.record.add(op, **fields)

    def tell(self, message: str) -> str:
        """Say ``message`` to the user (the widget's status line); returns it."""
        self._say(message)
        return message

    # -- internals ---------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        self.last_message = message
        if message and self._notify is not None:
            self._notify(message)

    def continue_object(self, label: int) -> None:
        """Continue object ``label`` on this plane: its pixels here are the initial mask."""
        mine = read_plane(self.labels, self._key) == label
        self.current = CurrentObject(label, as_local(mine.astype(np.float32), self.plane_shape))

    def predictor_image_changed(self) -> None:
        """Something else (a propagation) gave the predictor other images: the next click
        sets this plane's image again."""
        self._predictor_holds = None

    def commit_preview(self) -> bool:
        """Write the preview on this plane under the object's id (allocated if new); False,
        having said why, when it could not be written."""
        mask = self.preview
        if mask is None:
            return True
        label = self.current.object_id
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
        self.current.object_id = self.last_committed = label
        self.stacks.objects.segmented(label, self._key)
        if changed:
            self._commits.add(label, self._key)
        where = f" on {slice_text(self._key)}" if self._key else ""
        self._say(f"Label {label} committed{where} ({changed} pixel(s) changed)")
        return True

    def _finish_now(self) -> None:
        self.log("finish")
        if self.current.clicks and not self.commit_preview():
            return  # keep the object: the user can fix the labels dtype and finish again
        if self.current.correcting and self.current.clicks:
            self.stacks.corrected(self.current.object_id, self._key)
        self.current = CurrentObject()
