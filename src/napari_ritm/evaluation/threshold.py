"""Fitting the probability threshold to the way the user draws outlines.

Annotators differ in where they put an outline: on the object's edge, a pixel inside it, or a
pixel outside. The model follows the sets it learnt from, so its masks can come out a little
larger (or smaller) than the user's labels even when their shape is right. The threshold that
turns the model's probabilities into a mask moves the mask's edge: :func:`fit_threshold` clicks
once on each of the user's objects (the first click of the evaluation protocol, at the object's
innermost pixel), and picks the threshold that gives the highest mean IoU with the user's labels
when it beats the one in use by a margin. One prediction per object: a few seconds for tens of
objects on one CPU thread.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from napari_ritm.evaluation.noc import evaluate_sample, get_iou
from napari_ritm.inference.clicks import DEFAULT_THRESHOLD

__all__ = ["THRESHOLDS", "ThresholdFit", "fit_threshold"]

#: the thresholds tried: 0.20 to 0.80 in steps of 0.05, and the evaluation protocol's 0.49
THRESHOLDS: tuple[float, ...] = tuple(
    sorted({DEFAULT_THRESHOLD, *np.round(np.arange(0.2, 0.801, 0.05), 2)}))


@dataclass(frozen=True)
class ThresholdFit:
    """The outcome of :func:`fit_threshold`: the ``threshold`` with the highest mean IoU after
    one click over ``objects`` objects (``iou``), against ``current`` (the threshold in use,
    ``iou_current``); ``table``: mean IoU per threshold tried."""

    threshold: float
    iou: float
    current: float
    iou_current: float
    objects: int
    table: dict[float, float]

    def summary(self) -> str:
        """One line for the user."""
        return (f"threshold {self.threshold:.2f}: mean IoU after one click {self.iou:.3f} on "
                f"{self.objects} objects (at {self.current:.2f}: {self.iou_current:.3f})")


def _objects(labels: np.ndarray, min_area: int) -> np.ndarray:
    ids, areas = np.unique(labels[labels > 0], return_counts=True)
    return ids[areas >= min_area]


def fit_threshold(
    predictor,
    samples: Sequence,
    *,
    current: float = DEFAULT_THRESHOLD,
    thresholds: Sequence[float] = THRESHOLDS,
    min_area: int = 30,
    max_objects: int = 100,
    min_gain: float = 0.01,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ThresholdFit:
    """The threshold that best matches the labels of ``samples`` after one click per object.

    ``predictor``: a predictor of its own (``set_image``/``predict``, e.g. from
    :func:`napari_ritm.inference.modes.make_predictor`; not one a session is using), run as
    configured (mode, mirror averaging). ``samples``: images with instance labels
    (:class:`~napari_ritm.training.data.LabeledImage`: ``image`` (H, W, 3) uint8, ``labels``
    (H, W) int, 0 background, negative ignored). Objects of at least ``min_area`` pixels, at
    most ``max_objects`` spread evenly over them. ``current`` is always among the thresholds
    compared, and stays unless another raises the mean IoU by at least ``min_gain`` (where
    the outlines already match, neighbouring thresholds differ by less than the noise of a
    few tens of objects). ``on_progress(done, total)`` after each object; ``should_stop()``
    True ends early with the objects done so far. Raises ValueError without any object."""
    picks = [(i, int(k)) for i, s in enumerate(samples) for k in _objects(s.labels, min_area)]
    if not picks:
        raise ValueError(f"no labelled object of at least {min_area} pixels")
    if len(picks) > max_objects:
        picks = [picks[int(j)] for j in np.linspace(0, len(picks) - 1, max_objects).round()]
    grid = np.array(sorted({round(float(current), 4), *map(float, thresholds)}))
    rows, shown = [], None
    for done, (index, label) in enumerate(picks, 1):
        sample = samples[index]
        gt = np.where(sample.labels < 0, -1, sample.labels == label).astype(np.int32)
        probs = evaluate_sample(predictor, sample.image, gt, max_clicks=1, stop_iou=None,
                                new_image=index != shown).probs
        shown = index
        rows.append([get_iou(gt, probs > t) for t in grid])
        if on_progress is not None:
            on_progress(done, len(picks))
        if should_stop is not None and should_stop():
            break
    means = np.mean(rows, axis=0)
    at_current = int(np.flatnonzero(grid == round(float(current), 4))[0])
    best = int(np.argmax(means))
    if means[best] < means[at_current] + min_gain:
        best = at_current
    return ThresholdFit(threshold=float(grid[best]), iou=float(means[best]),
                        current=float(grid[at_current]), iou_current=float(means[at_current]),
                        objects=len(rows), table=dict(zip(map(float, grid), map(float, means))))
