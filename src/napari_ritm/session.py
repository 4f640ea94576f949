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
from dataclasses import dataclass, replace
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
from napari_ritm.planes import ImageSource, JobResult, PredictJob, PredictorLike
from napari_ritm.propagation import Propagation, PropagationStep

__all__ = ["ImageSource", "Session"]


def _full(probs: Any) -> np.ndarray | None:
    """Probabilities as a full (H, W) array (a window predictor's LocalProbs pasted)."""
    return probs.full() if hasattr(probs, "full") else probs


@dataclass(frozen=True)
class _Step:
    """Undo record of one applied click: the state and probabilities before it."""

    state_before: Any
    probs_before: Any  # (H, W) float32 or LocalProbs
    state_owner_before: Any  # the predictor whose state ``state_before`` is


class Session:
    """Segments objects one at a time into ``labels`` from clicks on ``image``.

    ``image``: :class:`ImageSource` with spatial shape (..., H, W); ``labels``: a
    :class:`~napari_ritm.editing.LabelsLike` (napari ``Labels``) of the same shape, written only
    through ``data_setitem``; ``predictor``: a :class:`PredictorLike` or None until a model is
    loaded (clicks wait in the queue). ``threshold`` turns probabilities into the preview;
    ``overwrite`` lets objects take pixels of other labels; ``notify`` receives user messages.

    State in view: ``key`` (leading indices of the plane), ``clicks``, ``preview`` ((H, W) bool
    or None), ``object_id`` (None until the object is first committed or when refining a label).
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
    ) -> None:
        check_layers_match(image.shape, labels.data.shape, labels_name=labels_name)
        self.image = image
        self.labels = labels
        self.predictor = predictor
        self.threshold = float(threshold)
        self.overwrite = bool(overwrite)
        self.labels_name = labels_name
        self._notify = notify
        self.last_message = ""
        self.last_committed: int | None = None  # id of the latest committed object
        self._commits: list[tuple[int, tuple[int, ...]]] = []  # (label, slice) of each commit
        self._key: tuple[int, ...] = (0,) * (len(image.shape) - 2)
        self._generation = 0
        self._queue: deque[tuple[str, Click | None]] = deque()
        self._running: PredictJob | None = None
        self._propagation: Propagation | None = None
        self._propagations = 0  # numbers each propagation, so late steps of an old one are ignored
        self._propagated_label = 0
        self._propagation_written = 0
        self._plane_cache: tuple[Any, np.ndarray] | None = None
        self._predictor_holds: tuple[Any, Any] | None = None
        self._object_id: int | None = None
        self._end_object()

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

    def set_predictor(self, predictor: PredictorLike | None) -> None:
        """Use ``predictor`` from the next click on (model, zoom-in or flip changed)."""
        self.predictor = predictor
        self._predictor_holds = None

    def set_contrast_limits(self, limits: tuple[float, float] | None) -> None:
        """The image's display range changed: the next click normalises with it."""
        self.image = replace(self.image, contrast_limits=None if limits is None else tuple(limits))

    @property
    def last_commit(self) -> tuple[int, tuple[int, ...]] | None:
        """(label, slice key) of the newest commit of this session not undone, or None."""
        return self._commits[-1] if self._commits else None

    def forget_commit(self) -> None:
        """The newest commit was undone in the labels layer (napari's undo)."""
        if self._commits:
            self._commits.pop()
        self._say("")

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
            self._say(f"{self.last_message}; the object on slice {self._key} was discarded")
        object_id = self._object_id
        self._end_object()
        self._key = key
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

    def propagate(self, direction: int) -> Propagation | None:
        """Carry the object to the next planes along the last stack axis (``direction`` +1/-1).

        The object is the current one (its preview here is committed first) or, when none is in
        progress, the one finished last. Returns a :class:`Propagation` whose ``steps()`` the
        caller runs (a worker thread may), passing each step to :meth:`apply_step` and finally
        calling :meth:`end_propagation`; None (with a message) when there is nothing to carry.
        """
        if not self._key:
            self._say("Propagate needs a stack (3D or time series)")
            return None
        if self.busy:
            self._say("Wait for the running prediction before propagating")
            return None
        if self.predictor is None:
            self._say("No model loaded yet")
            return None
        if self._clicks and not self._commit_here():
            return None
        label = self._object_id if self._object_id is not None else self.last_committed
        if label is None:
            self._say("Nothing to propagate: segment an object (or refine a label) first")
            return None
        start = read_plane(self.labels, self._key) == label
        if not start.any():
            self._say(f"Label {label} has no pixels on this slice: nothing to propagate")
            return None
        self._start_object(label)
        self._predictor_holds = None
        self._propagations += 1
        self._propagation_written = 0
        self._propagated_label = label
        self._propagation = Propagation(
            self.predictor, self.image, self._key, start, direction,
            threshold=self.threshold, generation=self._propagations,
        )
        return self._propagation

    def apply_step(self, step: PropagationStep) -> None:
        """Write one propagated plane (one undo step in the labels layer). The user may change
        slices meanwhile; steps of a cancelled or finished propagation are ignored."""
        prop = self._propagation
        if prop is None or prop.cancelled or prop.finished or step.generation != prop.generation:
            return
        label = self._propagated_label
        if not self.overwrite and (read_plane(self.labels, step.key) == label).any():
            prop.finish(f"label {label} already has pixels on slice {step.key}: stopped there "
                        "without changing them (turn on Overwrite to replace them)")
            return
        try:
            commit_plane(self.labels, step.key, step.mask, self._propagated_label,
                         overwrite=self.overwrite, layer_name=self.labels_name)
        except (ValueError, TypeError) as error:  # e.g. read-only labels data
            prop.finish(f"slice {step.key} not written: {error}")
            return
        self._propagation_written += 1

    def end_propagation(self, *, cancelled: bool = False) -> None:
        """The propagation ended (finished, stopped or failed): report it and accept clicks."""
        prop, self._propagation = self._propagation, None
        if prop is None or (prop.cancelled and not cancelled):  # reset: already reported
            return
        how = "stopped by you" if cancelled else prop.stop_reason
        # the propagated object is done: the next click starts a new object
        self._end_object()
        self._say(f"Propagated label {self._propagated_label} to {self._propagation_written} "
                  f"slice(s); {how}")

    # -- the queue ---------------------------------------------------------------------------

    def pump(self) -> PredictJob | None:
        """Run queued undos/finishes in order up to the next click; return that click's job.

        None when the queue is empty, a job is running, or no predictor is loaded yet.
        """
        if self._running is not None or self._propagation is not None:
            return None
        while self._queue:
            kind, click = self._queue[0]
            if kind == "click":
                if self.predictor is None:
                    return None
                self._queue.popleft()
                self._running = self._job_for(click)
                return self._running
            self._queue.popleft()
            if kind == "undo":
                self._undo_applied()
            else:
                self._finish_now()
        return None

    def complete(self, job: PredictJob, result: JobResult) -> None:
        """Apply a finished job's result (ignored when the session moved on meanwhile)."""
        if job is self._running:
            self._running = None
        if job.generation != self._generation:
            return
        cache_key = (job.key, job.source.contrast_limits)  # what the job normalised with
        self._plane_cache = (cache_key, result.plane)
        self._predictor_holds = (job.predictor, cache_key)
        self._steps.append(_Step(job.state, self._probs, self._state_owner))
        self._clicks.append(job.clicks[-1])
        self._probs, self._state = result.probs, result.state
        self._state_owner = job.predictor

    def fail(self, job: PredictJob, error: BaseException) -> None:
        """A job raised: reset the object cleanly and tell the user why."""
        if job is self._running:
            self._running = None
        self._predictor_holds = None
        if job.generation == self._generation:
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

    # -- internals ---------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        self.last_message = message
        if message and self._notify is not None:
            self._notify(message)

    def _job_for(self, click: Click) -> PredictJob:
        cache_key = (self._key, self.image.contrast_limits)
        cached = self._plane_cache
        plane = cached[1] if cached is not None and cached[0] == cache_key else None
        holds = self._predictor_holds
        needs_image = holds is None or holds[0] is not self.predictor or holds[1] != cache_key
        state, prev_mask = self._state, self._initial
        if state is not None and self._state_owner is not self.predictor:
            # another predictor (model or mode changed mid-object): it carries on from the
            # current mask, as when refining a label
            state, prev_mask = None, _full(self._probs)
        return PredictJob(
            predictor=self.predictor, source=self.image, key=self._key, plane=plane,
            needs_image=needs_image, state=state, clicks=(*self._clicks, click),
            prev_mask=prev_mask, generation=self._generation,
        )

    def _cancel_pending(self) -> int:
        """Drop queued operations and orphan the running job; the number of clicks dropped."""
        dropped = sum(kind == "click" for kind, _ in self._queue)
        self._queue.clear()
        if self._running is not None:
            dropped += 1
        self._generation += 1
        return dropped

    def _end_object(self) -> None:
        self._object_id = None
        self._initial: np.ndarray | None = None
        self._clicks: list[Click] = []
        self._steps: list[_Step] = []
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
            self._commits.append((label, self._key))
        where = f" on slice {self._key}" if self._key else ""
        self._say(f"Label {label} committed{where} ({changed} pixel(s) changed)")
        return True

    def _finish_now(self) -> None:
        if self._clicks and not self._commit_here():
            return  # keep the object: the user can fix the labels dtype and finish again
        self._end_object()
