"""Training samples whose previous-mask input comes from outside the click loop.

RITM trains the previous-mask input only with the network's own earlier predictions. Two uses of
the plugin feed it something else, and :class:`GuidanceMix` makes samples of both:

- **refine**: the mask of an existing label (Cellpose, a threshold, a neighbouring slice) with
  the errors automatic tools make (:func:`napari_ritm.evaluation.initial_masks.synthetic_error`,
  or the textbook threshold + watershed pipeline run on the crop), then one click: a corrective
  one on the largest error, as the refine benchmark's simulated user clicks (a pixel drawn among
  those more than half the largest distance inside the error, as the iterative training clicks
  are), or with probability ``inner_click_prob`` a positive click at the mask's innermost pixel,
  as **Check labels** and a user who clicks the label to refine it do; the target is then the
  object under that click.
- **propagate**: the mask of the same object on the neighbouring slice and no click at all, as
  propagation through a stack asks "where is this object on the next slice?". The neighbouring
  slice's mask comes from a real stack where the image has one (``neighbours`` of a
  :class:`~napari_ritm.training.data.LabeledImage`), else it is made from this slice's mask
  (scaled by 0.7-1.4, shifted, its boundary moved): mostly larger than the object, so the
  network learns to shrink toward an object's caps. With probability ``vanish_prob`` the
  object is gone and the target is empty: in a real stack the mask is an object of the
  neighbouring slice that ends there; on a 2D image an object's mask moved onto background
  (:meth:`GuidanceMix.ghost`; the dataset crops around it).

Samples of the click loop keep an all-zero previous mask. ``frozen`` samples keep their previous
mask and clicks through the no-grad iterative passes (:func:`~napari_ritm.training.iterative.
simulate_previous_clicks`), so the trained pass sees them as they are; the others get corrective
clicks there as any sample does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_ritm.evaluation.initial_masks import (
    ERROR_KINDS,
    bright_objects,
    matched_masks,
    synthetic_error,
    threshold_watershed,
)
from napari_ritm.inference.clicks import innermost_pixel

__all__ = ["Guidance", "GuidanceMix", "click_focus", "corrective_click"]


@dataclass(frozen=True)
class Guidance:
    """One guided sample: ``prev`` (H, W) float32 in {0, 1}, ``gt_ids`` the target object ids
    (empty: nothing to segment), ``positives`` / ``negatives`` click pixels (K, 2) int,
    ``frozen``: kept as is through the iterative passes, ``kind``: what made it, ``focus``:
    (H, W) float32 >= 1, the loss weight of each pixel, or None (every pixel 1)."""

    prev: np.ndarray
    gt_ids: tuple[int, ...]
    positives: np.ndarray
    negatives: np.ndarray
    frozen: bool
    kind: str
    focus: np.ndarray | None = None


def click_focus(shape: tuple[int, int], at: tuple[int, int], radius: float,
                strength: float) -> np.ndarray:
    """Loss weights (H, W) float32: ``1 + strength * exp(-d^2 / (2 radius^2))``, ``d`` the
    distance to the pixel ``at``: the pixels near a corrective click count more."""
    rows = (np.arange(shape[0], dtype=np.float32) - at[0]) ** 2
    cols = (np.arange(shape[1], dtype=np.float32) - at[1]) ** 2
    scale = np.float32(-0.5 / max(radius, 1.0) ** 2)
    return 1 + np.float32(strength) * np.exp(scale * (rows[:, None] + cols[None, :]))


def corrective_click(
    pred: np.ndarray, gt: np.ndarray, rng: np.random.Generator
) -> tuple[int, int, bool] | None:
    """A click on the largest error of ``pred`` (H, W) bool against ``gt`` (H, W) in {1, 0, -1
    ignored}: in the false negatives when their deepest pixel lies deeper than the false
    positives' (positive click), else in the false positives; a pixel drawn uniformly among
    those deeper than half that depth. None when ``pred`` has no error."""
    valid = gt != -1
    obj = gt > 0.5
    depth = []
    for err in (obj & ~pred & valid, ~obj & pred & valid):
        depth.append(ndimage.distance_transform_edt(np.pad(err, 1))[1:-1, 1:-1])
    fn_max, fp_max = float(depth[0].max()), float(depth[1].max())
    if max(fn_max, fp_max) == 0:
        return None
    positive = fn_max > fp_max
    d = depth[0] if positive else depth[1]
    candidates = np.argwhere(d > 0.5 * max(fn_max, fp_max))
    y, x = candidates[rng.integers(len(candidates))]
    return int(y), int(x), bool(positive)


@dataclass(frozen=True, kw_only=True)
class GuidanceMix:
    """Draws guided samples for :class:`~napari_ritm.training.data.ClickDataset`.

    ``refine_prob`` / ``propagate_prob``: shares of the training samples of each kind (the rest
    are the click loop's); ``pipeline_prob``: share of refine masks from the threshold +
    watershed pipeline instead of a synthetic error; ``inner_click_prob``: share of refine
    samples clicked at the mask's innermost pixel; ``vanish_prob``: share of propagate samples
    where the object is gone; ``frozen_prob``: share of propagate samples kept without
    corrective clicks through the iterative passes (refine samples are never frozen: their
    corrections are what the user does next); ``focus_strength``: when > 0, a refine sample's
    loss weighs the pixels near its click up to ``1 + focus_strength`` times
    (:func:`click_focus`, over the target's equivalent radius), as the predictor keeps a
    refining click's change only where it was clicked.

    ``draw(image, labels, target, neighbours, rng)``: ``image`` (H, W, 3) float32 in [0, 1],
    ``labels`` (H, W) int ids (negative: ignored), ``target`` an id in ``labels``,
    ``neighbours`` the labels of the neighbouring slices (same ids for the same object) or
    ``()``; returns a :class:`Guidance` or None (a click-loop sample).
    """

    refine_prob: float = 0.25
    propagate_prob: float = 0.2
    pipeline_prob: float = 0.15
    inner_click_prob: float = 0.3
    vanish_prob: float = 0.15
    frozen_prob: float = 0.75
    focus_strength: float = 0.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if name.endswith("_prob") and not 0 <= value <= 1:  # the shares
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.focus_strength < 0:
            raise ValueError(f"focus_strength must be >= 0, got {self.focus_strength}")
        if self.refine_prob + self.propagate_prob > 1:
            raise ValueError("refine_prob + propagate_prob must be at most 1")

    def draw(
        self,
        image: np.ndarray,
        labels: np.ndarray,
        target: int | None,
        neighbours: tuple[np.ndarray, ...],
        rng: np.random.Generator,
    ) -> Guidance | None:
        u = rng.random()
        if target is None or u >= self.refine_prob + self.propagate_prob:
            return None
        if u < self.refine_prob:
            return self._refine(image, labels, target, rng)
        return self._propagate(labels, target, neighbours, rng)

    # -- refine ------------------------------------------------------------------------------

    def _refine(self, image, labels, target, rng) -> Guidance | None:
        prev, kind = None, ""
        if rng.random() < self.pipeline_prob:
            gray = image.mean(axis=2)
            auto = threshold_watershed(gray, bright=bright_objects(gray, labels),
                                       local=bool(rng.random() < 0.5))
            prev, kind = matched_masks(auto, np.where(labels == target, target, 0))[target], \
                "refine:pipeline"
        else:
            kind = str(rng.choice(ERROR_KINDS))
            prev, kind = synthetic_error(kind, labels, target, rng), f"refine:{kind}"
        if prev is None or not prev.any():
            return None
        none = np.zeros((0, 2), int)
        if rng.random() < self.inner_click_prob:
            y, x = innermost_pixel(prev)
            under = int(labels[y, x])
            if under > 0:
                return Guidance(prev.astype(np.float32), (under,), np.array([[y, x]]), none,
                                False, kind + "+inner", self._focus(labels, under, (y, x)))
        gt = np.where(labels < 0, -1, labels == target).astype(np.float32)
        click = corrective_click(prev, gt, rng)
        if click is None:
            return None
        y, x, positive = click
        at = np.array([[y, x]])
        return Guidance(prev.astype(np.float32), (target,), at if positive else none,
                        none if positive else at, False, kind,
                        self._focus(labels, target, (y, x)))

    def _focus(self, labels: np.ndarray, target: int, at: tuple[int, int]) -> np.ndarray | None:
        if self.focus_strength <= 0:
            return None
        radius = math.sqrt(np.count_nonzero(labels == target) / math.pi)
        return click_focus(labels.shape, at, radius, self.focus_strength)

    # -- propagate ---------------------------------------------------------------------------

    @property
    def vanish_share(self) -> float:
        """Share of all samples that show a vanished object (:meth:`ghost`)."""
        return self.propagate_prob * self.vanish_prob

    def ghost(
        self, labels: np.ndarray, boxes: dict[int, tuple[int, int, int, int]],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
        """A vanished object on a whole image: the mask of one of its objects (``boxes``, by
        id) moved to where it and a 2 px margin cover only background, as (H, W) bool, and its
        bounding box (to crop around); None when no such place was found."""
        ids = sorted(boxes)
        mask = labels == ids[int(rng.integers(len(ids)))]
        moved = _onto_background(mask, labels, rng)
        if moved is None:
            return None
        rows, cols = np.flatnonzero(moved.any(axis=1)), np.flatnonzero(moved.any(axis=0))
        return moved, (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]))

    def vanished(self, ghost: np.ndarray, rng: np.random.Generator) -> Guidance:
        """The sample of a vanished object whose mask (cropped) is ``ghost``: no click, nothing
        to segment."""
        none = np.zeros((0, 2), int)
        return Guidance(ghost.astype(np.float32), (), none, none,
                        bool(rng.random() < self.frozen_prob), "propagate:vanish")

    def _propagate(self, labels, target, neighbours, rng) -> Guidance | None:
        frozen = bool(rng.random() < self.frozen_prob)
        none = np.zeros((0, 2), int)
        if neighbours:
            side = neighbours[int(rng.integers(len(neighbours)))]
            mask = side == target
            if mask.sum() >= 10:
                return Guidance(mask.astype(np.float32), (target,), none, none, frozen,
                                "propagate:stack")
            # the object ends here from that side: a neighbour's object that is absent here
            gone = np.setdiff1d(np.unique(side[side > 0]), np.unique(labels[labels > 0]))
            if gone.size and rng.random() < self.vanish_prob:
                mask = side == int(rng.choice(gone))
                if mask.sum() >= 10:
                    return Guidance(mask.astype(np.float32), (), none, none, frozen,
                                    "propagate:stack-end")
        mask = labels == target
        prev = _neighbour_guess(mask, rng)
        if prev.sum() < 5:
            return None
        return Guidance(prev.astype(np.float32), (target,), none, none, frozen,
                        "propagate:guess")


def _neighbour_guess(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The object's mask as the neighbouring slice might have it: scaled by 0.7-1.4 (log-uniform
    over 0.85-1.4 three times in four: near a cap the previous slice is larger), shifted up to
    0.2 radii, its boundary moved by up to 2 px."""
    radius = math.sqrt(mask.sum() / math.pi)
    low = 0.85 if rng.random() < 0.75 else 0.7
    scale = math.exp(rng.uniform(math.log(low), math.log(1.4)))
    shift = rng.uniform(-0.2, 0.2, size=2) * radius
    centre = np.argwhere(mask).mean(axis=0)
    matrix = np.eye(2) / scale
    offset = centre - matrix @ (centre + shift)
    out = ndimage.affine_transform(mask.astype(np.float32), matrix, offset, order=1) > 0.5
    wobble = int(rng.integers(-2, 3))
    if wobble > 0:
        out = ndimage.binary_dilation(out, iterations=wobble)
    elif wobble < 0:
        out = ndimage.binary_erosion(out, iterations=-wobble)
    return out


def _onto_background(
    mask: np.ndarray, labels: np.ndarray, rng: np.random.Generator, tries: int = 16
) -> np.ndarray | None:
    """``mask`` moved to a place of the image where it and a 2 px margin cover only background
    (a slice past the object's end), or None when no such place was found."""
    rows, cols = np.nonzero(mask)
    h, w = mask.shape
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    if height >= h or width >= w:
        return None
    occupied = ndimage.binary_dilation(labels != 0, iterations=2)
    for _ in range(tries):
        dy = int(rng.integers(0, h - height + 1)) - rows.min()
        dx = int(rng.integers(0, w - width + 1)) - cols.min()
        if not occupied[rows + dy, cols + dx].any():
            out = np.zeros_like(mask)
            out[rows + dy, cols + dx] = True
            return out
    return None
