"""Objects from points: one object per point, e.g. the seeds of a spot detector (no Qt).

:func:`objects_from_points` runs a :class:`~napari_ritm.session.session.Session` over a working
copy of the labels: for each point one positive click on its plane, then Finish, with the
session's rules (pixels of other labels are never taken). Points outside the image, or on a
pixel that already holds a label, are skipped and counted. The copy lets the work run in a
background thread while the user keeps painting: :class:`Writes` holds what it wrote, merged
per pixel, and :meth:`Writes.apply` puts it into the real labels in one ``data_setitem`` (one
undo step in napari), leaving every pixel that changed since the copy was taken as it is.
"""
from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np

from napari_ritm.inference.base import ClickPredictor
from napari_ritm.inference.clicks import DEFAULT_THRESHOLD
from napari_ritm.inference.planes import ImageSource
from napari_ritm.session.editing import LabelsLike
from napari_ritm.session.record import ArrayLabels
from napari_ritm.session.session import Session

__all__ = ["PointsResult", "Writes", "objects_from_points", "objects_from_points_steps"]

#: One point: (slice key: the indices before the last two axes, row, column), in pixels.
Point = tuple[tuple[int, ...], float, float]


@dataclass(frozen=True)
class Writes:
    """Pixels written, merged per pixel: ``indices`` (one int array per axis of the labels),
    ``before`` (the value each held in the copy) and ``after`` (the value written last)."""

    indices: tuple[np.ndarray, ...]
    before: np.ndarray
    after: np.ndarray

    @classmethod
    def of(cls, labels: ArrayLabels, shape: tuple[int, ...]) -> Writes:
        """The writes still in ``labels``' undo history, merged per pixel in their order."""
        history = labels.history
        if not history:
            empty = np.zeros(0, dtype=np.intp)
            return cls(tuple(empty for _ in shape), np.zeros(0, labels.data.dtype),
                       np.zeros(0, labels.data.dtype))
        flat, before, after = [], [], []
        for indices, old, new in history:
            where = np.ravel_multi_index(tuple(np.asarray(i) for i in indices), shape)
            flat.append(where)
            before.append(np.broadcast_to(old, where.shape))
            after.append(np.broadcast_to(new, where.shape))
        flat_all = np.concatenate(flat)
        before_all, after_all = np.concatenate(before), np.concatenate(after)
        pixels, first = np.unique(flat_all, return_index=True)
        _, last_reversed = np.unique(flat_all[::-1], return_index=True)
        last = flat_all.size - 1 - last_reversed
        return cls(np.unravel_index(pixels, shape), before_all[first], after_all[last])

    @property
    def count(self) -> int:
        """How many pixels the writes change."""
        return int(np.count_nonzero(self.before != self.after))

    def apply(self, labels: LabelsLike) -> tuple[int, int]:
        """Write into ``labels`` in one ``data_setitem``, only where a pixel still holds its
        ``before`` value. Returns (pixels written, pixels left because they changed since)."""
        changes = self.before != self.after
        indices = tuple(i[changes] for i in self.indices)
        current = np.asarray(labels.data[indices])
        keep = current == self.before[changes]
        if keep.any():
            labels.data_setitem(tuple(i[keep] for i in indices), self.after[changes][keep])
        return int(keep.sum()), int((~keep).sum())


@dataclass(frozen=True)
class PointsResult:
    """What :func:`objects_from_points` did: ``objects`` (the label of each object made, in
    the points' order), points ``outside`` the image, points on an already ``labelled`` pixel,
    points whose mask took no pixel (``empty``), whether it was ``stopped`` early, and the
    ``writes`` to apply."""

    objects: list[int]
    outside: int
    labelled: int
    empty: int
    stopped: bool
    writes: Writes

    def summary(self) -> str:
        """One sentence for the user."""
        parts = [f"{len(self.objects)} object(s) made"]
        for count, what in ((self.labelled, "on pixels that already had a label"),
                            (self.outside, "outside the image"),
                            (self.empty, "whose mask took no free pixel")):
            if count:
                parts.append(f"{count} point(s) skipped {what}")
        return "; ".join(parts) + (" (stopped early)" if self.stopped else "")


def objects_from_points(
    image: ImageSource,
    labels: np.ndarray,
    points: Sequence[Point],
    predictor: ClickPredictor,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PointsResult:
    """One object per point, made on a copy of ``labels`` (never modified).

    ``image``: the image (its spatial shape equals ``labels.shape``); ``points``: see
    :data:`Point`; ``predictor``: a predictor of the session's kind, used for every point;
    ``on_progress(done, total)`` after each point; ``should_stop()`` is asked before each
    point. Raises what the session raises for layers that do not match (``ValueError``)."""
    steps = objects_from_points_steps(image, labels, points, predictor, threshold=threshold,
                                      should_stop=should_stop)
    while True:
        try:
            done = next(steps)
        except StopIteration as end:
            return end.value
        if on_progress is not None:
            on_progress(done, len(points))


def objects_from_points_steps(
    image: ImageSource,
    labels: np.ndarray,
    points: Sequence[Point],
    predictor: ClickPredictor,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[int, None, PointsResult]:
    """:func:`objects_from_points` as a generator that yields the number of points done after
    each point and returns the :class:`PointsResult` (for napari's workers, whose progress
    bar counts the yields)."""
    work = ArrayLabels(np.array(labels))
    session = Session(image, work, predictor=predictor, threshold=threshold,
                      record_actions=False)
    ndim = work.data.ndim
    objects: list[int] = []
    outside = labelled = empty = 0
    stopped = False
    for done, (key, y, x) in enumerate(points, start=1):
        if should_stop is not None and should_stop():
            stopped = True
            break
        row, col = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
        key = tuple(int(k) for k in key)
        inside = len(key) == ndim - 2 and all(
            0 <= k < n for k, n in zip((*key, row, col), work.data.shape))
        if not inside:
            outside += 1
        elif work.data[(*key, row, col)] != 0:
            labelled += 1
        else:
            if key != session.key:
                session.set_slice(key)
            before = session.last_commit
            session.click(y, x, positive=True)
            session.finish()
            session.run_pending()
            if session.last_commit != before and session.last_commit is not None:
                objects.append(session.last_commit[0])
            else:
                empty += 1
        yield done
    return PointsResult(objects, outside, labelled, empty, stopped,
                        Writes.of(work, work.data.shape))
