"""Carrying an object from slice to slice through a stack (pure Python, no Qt).

On each next plane the predictor runs twice, in one network batch on the window around the previous
mask, with one positive click at the previous mask's innermost pixel: *guided* (the previous
plane's mask as its previous-mask input: the mask kept) and *fresh* (the click alone). The object
has ended, or the mask went astray, when the stop rule (:data:`STOP_RULE`) fires on what they
returned (:class:`StepFigures`): the fresh mask, free of the previous mask's pull, overlaps the
previous plane's mask too little, or the image inside the mask changed a lot (another cell at the
same place). Rule and thresholds were chosen on the 3D benchmark's select half with the default
model (benchmarks/propagation.py, docs/stacks.md). The session writes each
plane as one undo step (:meth:`napari_ritm.session.stack.StackPropagation.apply_step`).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_ritm.inference.clicks import DEFAULT_THRESHOLD, Click, innermost_pixel
from napari_ritm.inference.planes import slice_text
from napari_ritm.inference.window import zoom_roi

__all__ = ["GUIDES", "STOP_RULE", "STOP_RULES", "Propagation", "PropagationStep", "StepFigures",
           "interior_box"]


@dataclass(frozen=True)
class StepFigures:
    """What the network returned on one propagated plane, from two passes with one positive
    click at the previous mask's innermost pixel: *guided* (the previous plane's mask as the
    previous-mask input, as RITM refines a mask) and *fresh* (the click alone).

    ``area``: pixels of the guided mask; ``prev_area``: of the previous plane's mask;
    ``iou_prev``: IoU of the guided mask with the previous one; ``fresh_iou_prev``: the same
    for the fresh mask; ``agreement``: IoU of the guided and the fresh masks; ``click_prob``:
    guided probability at the click; ``mean_prob``: mean guided probability inside its mask;
    ``intensity_change``: relative change of the mean image intensity inside the mask from the
    previous plane (inside its mask) to this one: another cell in the same place often differs.
    """

    area: int
    prev_area: int
    iou_prev: float
    fresh_iou_prev: float
    agreement: float
    click_prob: float
    mean_prob: float
    intensity_change: float

    @classmethod
    def of(
        cls,
        guided: np.ndarray,
        fresh: np.ndarray,
        prev: np.ndarray,
        click: tuple[int, int],
        image: np.ndarray,
        prev_image: np.ndarray,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> StepFigures:
        """``guided``, ``fresh``: (H, W) probabilities; ``prev``: (H, W) bool; ``image``,
        ``prev_image``: the two planes as (H, W[, 3]) intensities."""
        mask, other = guided > threshold, fresh > threshold
        before = float(prev_image[prev].mean()) if prev.any() else 0.0
        after = float(image[mask].mean()) if mask.any() else 0.0
        change = abs(after - before) / max(abs(before), 1e-6)
        return cls(int(mask.sum()), int(prev.sum()), _iou(mask, prev), _iou(other, prev),
                   _iou(mask, other), float(guided[click]),
                   float(guided[mask].mean()) if mask.any() else 0.0, change)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 0.0


#: Candidate stop rules (True: the object has ended, or the mask went astray: stop, do not
#: write that plane), measured in benchmarks/propagation.py.
STOP_RULES = {
    "area<10 or >3x (v1)": lambda f: f.area < 10 or f.area > 3 * f.prev_area,
    "iou_prev<0.5": lambda f: f.iou_prev < 0.5,
    "fresh_iou_prev<0.5": lambda f: f.fresh_iou_prev < 0.5,
    "agreement<0.5": lambda f: f.agreement < 0.5,
    "agreement<0.6": lambda f: f.agreement < 0.6,
    "agreement<0.7": lambda f: f.agreement < 0.7,
    "agreement<0.6 or iou_prev<0.5": lambda f: f.agreement < 0.6 or f.iou_prev < 0.5,
    "agreement<0.7 or iou_prev<0.5": lambda f: f.agreement < 0.7 or f.iou_prev < 0.5,
    "agreement<0.7 or intensity>0.2": lambda f: f.agreement < 0.7 or f.intensity_change > 0.2,
    "agreement<0.7 or iou_prev<0.5 or intensity>0.2": lambda f: (
        f.agreement < 0.7 or f.iou_prev < 0.5 or f.intensity_change > 0.2
    ),
    "fresh_iou_prev<0.4 or iou_prev<0.5": lambda f: f.fresh_iou_prev < 0.4 or f.iou_prev < 0.5,
    "fresh_iou_prev<0.4 or intensity>0.2": lambda f: (
        f.fresh_iou_prev < 0.4 or f.intensity_change > 0.2
    ),
    "mean_prob<0.8 or iou_prev<0.3": lambda f: f.mean_prob < 0.8 or f.iou_prev < 0.3,
    "agreement<0.7 or iou_prev<0.5 or intensity>0.2 or mean_prob<0.8": lambda f: (
        f.agreement < 0.7 or f.iou_prev < 0.5 or f.intensity_change > 0.2 or f.mean_prob < 0.8
    ),
    "agreement<0.7 or iou_prev<0.5 or intensity>0.2 or mean_prob<0.85": lambda f: (
        f.agreement < 0.7 or f.iou_prev < 0.5 or f.intensity_change > 0.2 or f.mean_prob < 0.85
    ),
}

STOP_RULES.update({
    "vanished": lambda f: f.area < max(10, 0.15 * f.prev_area),
    "vanished or iou_prev<0.3": lambda f: f.area < max(10, 0.15 * f.prev_area)
    or f.iou_prev < 0.3,
    "vanished or agreement<0.5": lambda f: f.area < max(10, 0.15 * f.prev_area)
    or f.agreement < 0.5,
    "vanished or mean_prob<0.7": lambda f: f.area < max(10, 0.15 * f.prev_area)
    or f.mean_prob < 0.7,
})

#: The rule propagation uses: of the candidates, the highest mean 3D IoU over the three stack
#: kinds with v3 and the click guide (benchmarks/results/propagation_select.json: every
#: candidate's figures on the 3D benchmark's select half; docs/stacks.md).
STOP_RULE = "fresh_iou_prev<0.4 or intensity>0.2"


@dataclass(frozen=True)
class PropagationStep:
    """One propagated plane: ``key`` (leading indices), ``mask`` (H, W) bool, ``done`` planes so
    far (this one included) out of at most ``total``; ``generation`` numbers the propagation;
    ``figures``: what the network returned there (what the stop rule read)."""

    key: tuple[int, ...]
    mask: np.ndarray
    done: int
    total: int
    generation: int
    figures: StepFigures


#: How the previous plane's mask guides the next: ``"click"``, with one positive click at its
#: innermost pixel (the previous mask as the previous-mask input); ``"mask"``, with the mask
#: alone and no click (what the models trained on propagate samples learnt: the mask may shrink
#: toward a cap or vanish). Either way both passes of a plane run on the window around the
#: previous mask in one network batch.
GUIDES = ("click", "mask")


def interior_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (rmin, rmax, cmin, cmax; inclusive) of non-empty ``mask``."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])




class Propagation:
    """Runs the predictor plane after plane along the last stack axis from ``key``.

    ``predictor``: set_image / reset / predict as in ``Predictor``; ``source``: an object with
    ``shape`` (spatial, (..., H, W)) and ``windows(key)`` (an
    :class:`~napari_ritm.inference.planes.ImageSource`);
    ``start_mask``: (H, W) bool, the object on plane ``key``; ``direction``: +1 or -1.
    ``steps()`` yields one :class:`PropagationStep` per plane and stops when ``stop_rule`` (a
    name of :data:`STOP_RULES`) fires on a plane (that plane is not kept), before a plane of
    ``stop_at`` (leading-index keys: planes the user corrected), when the stack ends or
    :meth:`cancel` is called. ``guide``: one of :data:`GUIDES`. ``stop_reason`` and ``done``
    say how it ended.
    """

    def __init__(
        self,
        predictor: Any,
        source: Any,
        key: Sequence[int],
        start_mask: np.ndarray,
        direction: int,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        stop_rule: str = STOP_RULE,
        guide: str = "click",
        stop_at: frozenset = frozenset(),
        generation: int = 0,
    ) -> None:
        if direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {direction}")
        if not key:
            raise ValueError("propagation needs a stack: the image has no leading axis")
        self.predictor = predictor
        self.source = source
        self.key = tuple(int(k) for k in key)
        self.start_mask = np.asarray(start_mask, dtype=bool)
        self.direction = direction
        self.threshold = threshold
        self.stop_rule = STOP_RULES[stop_rule]
        if guide not in GUIDES:
            raise ValueError(f"guide must be one of {', '.join(GUIDES)}, got {guide!r}")
        self.guide = guide
        self.stop_at = frozenset(tuple(k) for k in stop_at)
        self.generation = generation
        size = int(source.shape[len(self.key) - 1])
        position = self.key[-1]
        self.total = size - 1 - position if direction > 0 else position
        self.done = 0
        self.stop_reason = "not started"
        self._cancelled = False
        self._finished = False

    def cancel(self) -> None:
        """Stop before the next plane; steps already yielded are no longer applied."""
        self._cancelled = True

    def finish(self, reason: str) -> None:
        """End here for ``reason`` (e.g. the next plane may not be written): no further plane
        is predicted, steps already yielded are no longer applied."""
        self._finished = True
        self.stop_reason = reason

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def finished(self) -> bool:
        return self._finished

    def _predict(self, plane: Any, prev: np.ndarray, image: np.ndarray,
                 prev_image: np.ndarray) -> tuple[np.ndarray, StepFigures]:
        """The guided and the fresh pass on one plane, in one network batch on the window
        around the previous mask: (guided mask, what they returned)."""
        self.predictor.set_image(plane)
        row, col = innermost_pixel(prev)
        click = [Click(float(row), float(col), True)]
        roi = zoom_roi(interior_box(prev), click, 1.4, 96, prev.shape)
        guided_clicks = () if self.guide == "mask" else click
        guided, fresh = (v.full() for v in self.predictor.predict_views(
            [(guided_clicks, prev.astype(np.float32)), (click, None)], roi))
        figures = StepFigures.of(guided, fresh, prev, (row, col), image, prev_image,
                                 self.threshold)
        return guided > self.threshold, figures

    def steps(self) -> Iterator[PropagationStep]:
        prev = self.start_mask
        try:
            prev_image = self.source.windows(self.key).full()[..., 0]
        except ValueError as error:  # e.g. a constant (empty) slice
            self.stop_reason = f"{slice_text(self.key)} cannot be read: {error}"
            return
        position = self.key[-1]
        self.stop_reason = "reached the end of the stack"
        for _ in range(self.total):
            if self._finished:
                return
            if self._cancelled:
                self.stop_reason = "cancelled"
                return
            position += self.direction
            key = (*self.key[:-1], position)
            if key in self.stop_at:
                self.stop_reason = (f"{slice_text(key)} holds your own correction of the object: "
                                    "stopped before it")
                return
            try:
                plane = self.source.windows(key)
            except ValueError as error:  # e.g. a constant (empty) slice
                self.stop_reason = f"{slice_text(key)} cannot be segmented: {error}"
                return
            image = plane.full()[..., 0]
            mask, figures = self._predict(plane, prev, image, prev_image)
            if self.stop_rule(figures):
                self.stop_reason = (f"the object ended at {slice_text(key)} (there a fresh "
                                    "prediction overlaps the last slice's mask by "
                                    f"{figures.fresh_iou_prev:.0%}, and the intensity inside "
                                    f"the mask changed by {figures.intensity_change:.0%}); "
                                    "that slice was not kept")
                return
            self.done += 1
            yield PropagationStep(key, mask, self.done, self.total, self.generation, figures)
            prev, prev_image = mask, image
