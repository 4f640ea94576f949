"""Training click sampler: the RITM multi-point sampler, reimplemented with numpy/scipy.

For one training crop it picks the target object (sometimes the union of two objects), then
draws a random number of positive and negative clicks the way the RITM recipe does:

- counts follow a truncated geometric law, P(k) ∝ gamma^k (``prob_gamma`` 0.8): 1..N positives
  per object, 0..N negatives;
- positives are drawn uniformly inside the object, which is first eroded (3×3,
  ``positive_erode_iters`` times) with probability ``positive_erode_prob`` unless that leaves
  10 pixels or fewer;
- each negative comes from one of three regions, chosen with probabilities 0.1 / 0.4 / 0.5:
  all background, the other objects, or a border ring around the object whose width is
  ``ceil(expand_ratio * sqrt(area))``;
- with probability ``merge_objects_prob`` two objects form the target; each then gets one
  positive, and the rest are drawn from the union of their regions.

Added for the first click (``single_click_prob``, default 0): with that probability the target
gets exactly one positive click and no negative one, placed, with probability
``centre_click_prob``, at the object's innermost pixel (where the evaluation clicker and most
users put the first click), else uniformly in the eroded object.

Default numbers are those of the official COCO+LVIS recipe (MultiPointSampler(24,
prob_gamma=0.80, merge_objects_prob=0.15, max_num_merged_objects=2), other arguments at the
class defaults: expand_ratio 0.1, positive_erode_prob 0.9, positive_erode_iters 3).
Randomness comes only from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

# The official sampler tags sampled clicks with index 100; released networks ignore the index.
SAMPLED_CLICK_INDEX = 100
_SQUARE = np.ones((3, 3), dtype=bool)

Region = list[tuple[np.ndarray, float]]  # alternatives: (pixel coordinates (K, 2), probability)


def target_map(labels: np.ndarray, ids) -> np.ndarray:
    """(H, W) float32: 1 on the objects ``ids`` of ``labels``, -1 where ``labels`` < 0 (ignored),
    0 elsewhere."""
    target = np.isin(labels, np.asarray(list(ids), dtype=labels.dtype)).astype(np.float32)
    target[labels < 0] = -1.0
    return target


def geometric_probs(n: int, gamma: float) -> np.ndarray:
    """P(k) ∝ gamma**k for k = 0..n-1, normalised to sum to 1."""
    probs = gamma ** np.arange(n, dtype=np.float64)
    return probs / probs.sum()


class MultiPointSampler:
    """Samples a target mask and its clicks from an instance-label crop.

    ``sample(labels, rng, target=None)``: labels (H, W) integer, 0 = background, k > 0 = object
    k, < 0 = ignore; ``target``: the object to segment (None or absent from ``labels``: a random
    one); another object may still join it (``merge_objects_prob``). Returns ``(gt, points)``:
    gt (H, W) float32 with 1 = target, 0 = background, -1 = ignored;
    points (2 * max_num_points, 3) float32 rows (y, x, index) in pixels, positives in the first
    half, negatives in the second, unused rows (-1, -1, -1). With no object in the crop the target
    is empty and only negative clicks are drawn.
    """

    def __init__(self, max_num_points: int = 24, *, prob_gamma: float = 0.80,
                 expand_ratio: float = 0.1, positive_erode_prob: float = 0.9,
                 positive_erode_iters: int = 3, negative_bg_prob: float = 0.1,
                 negative_other_prob: float = 0.4, negative_border_prob: float = 0.5,
                 merge_objects_prob: float = 0.15, max_num_merged_objects: int = 2,
                 single_click_prob: float = 0.0, centre_click_prob: float = 0.5) -> None:
        if max_num_points < 1:
            raise ValueError("max_num_points must be at least 1")
        neg_probs = (negative_bg_prob, negative_other_prob, negative_border_prob)
        if not math.isclose(sum(neg_probs), 1.0):
            raise ValueError(f"the negative strategy probabilities must sum to 1, got {neg_probs}")
        self.max_num_points, self.expand_ratio = max_num_points, expand_ratio
        self.positive_erode_prob, self.positive_erode_iters = (
            positive_erode_prob, positive_erode_iters
        )
        self.negative_probs, self.merge_objects_prob = neg_probs, merge_objects_prob
        self.max_num_merged_objects = (
            max_num_points if max_num_merged_objects == -1 else max_num_merged_objects
        )
        self.single_click_prob = single_click_prob
        self.centre_click_prob = centre_click_prob
        self._pos_count_probs = geometric_probs(max_num_points, prob_gamma)
        self._neg_count_probs = geometric_probs(max_num_points + 1, prob_gamma)

    def sample(
        self, labels: np.ndarray, rng: np.random.Generator, target: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ValueError(f"labels must be 2-D (H, W), got shape {labels.shape}")
        ignore = labels < 0
        object_ids = np.unique(labels[labels > 0])
        if len(object_ids) == 0:
            gt = np.zeros(labels.shape, dtype=bool)
            background = labels == 0
            positive_regions: list[Region] = []
            negative_region = [(np.argwhere(background), p) for p in self.negative_probs]
        else:
            chosen = self._choose_objects(object_ids, rng, target)
            object_masks = [labels == obj for obj in chosen]
            gt = np.logical_or.reduce(object_masks)
            positive_regions = [
                [(np.argwhere(self._maybe_erode(m, rng)), 1.0)] for m in object_masks
            ]
            background = ~gt & ~ignore
            other = background if len(object_ids) <= len(chosen) else (labels > 0) & ~gt
            negative_region = [
                (np.argwhere(background), self.negative_probs[0]),
                (np.argwhere(other), self.negative_probs[1]),
                (np.argwhere(self._border(gt) & ~ignore), self.negative_probs[2]),
            ]
        if (
            self.single_click_prob > 0
            and len(positive_regions) == 1
            and rng.random() < self.single_click_prob
        ):
            positives, negatives = [self._first_click(object_masks[0], rng)], []
        else:
            positives = self._sample_group(positive_regions, negative_counts=False, rng=rng)
            negatives = self._sample_group([negative_region], negative_counts=True, rng=rng)
        return target_map(labels, chosen if len(object_ids) else ()), self.points(
            positives, negatives
        )

    def points(self, positives, negatives) -> np.ndarray:
        """The (2 * max_num_points, 3) points array of the given click pixels ((K, 2) or a list
        of (y, x)), positives in the first half, negatives in the second."""
        return np.concatenate([self._pad(list(positives)), self._pad(list(negatives))], axis=0)

    def _choose_objects(
        self, object_ids: np.ndarray, rng: np.random.Generator, target: int | None
    ) -> np.ndarray:
        if target is not None and target not in object_ids:
            target = None
        if len(object_ids) > 1 and rng.random() < self.merge_objects_prob:
            most = min(len(object_ids), self.max_num_merged_objects)
            count = int(rng.integers(2, most + 1))
            if target is None:
                return rng.choice(object_ids, size=count, replace=False)
            others = rng.choice(object_ids[object_ids != target], size=count - 1, replace=False)
            return np.concatenate([[target], others])
        if target is not None:
            return np.array([target])
        return object_ids[[rng.integers(len(object_ids))]]

    def _first_click(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One positive click: the innermost pixel (``centre_click_prob``) or a random one of
        the eroded object."""
        if rng.random() < self.centre_click_prob:
            dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
            return np.array(np.unravel_index(int(dist.argmax()), mask.shape))
        coords = np.argwhere(self._maybe_erode(mask, rng))
        return coords[rng.integers(len(coords))]

    def _maybe_erode(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.positive_erode_prob:
            return mask
        # border_value=1: the image edge does not erode the object (as OpenCV's default border)
        eroded = ndimage.binary_erosion(
            mask, _SQUARE, iterations=self.positive_erode_iters, border_value=1
        )
        return eroded if eroded.sum() > 10 else mask

    def _border(self, mask: np.ndarray) -> np.ndarray:
        radius = int(np.ceil(self.expand_ratio * np.sqrt(mask.sum())))
        if radius == 0:
            return np.zeros_like(mask)
        return ndimage.binary_dilation(mask, _SQUARE, iterations=radius) & ~mask

    def _count(self, negative: bool, rng: np.random.Generator) -> int:
        if negative:
            return int(rng.choice(self.max_num_points + 1, p=self._neg_count_probs))
        return 1 + int(rng.choice(self.max_num_points, p=self._pos_count_probs))

    @staticmethod
    def _draw(region: Region, count: int, rng: np.random.Generator) -> list[np.ndarray]:
        probs = np.array([p for _, p in region], dtype=np.float64)
        points = []
        for _ in range(count):
            coords = (
                region[int(rng.choice(len(region), p=probs / probs.sum()))][0]
                if len(region) > 1
                else region[0][0]
            )
            if len(coords):
                points.append(coords[rng.integers(len(coords))])
        return points

    def _sample_group(
        self, regions: list[Region], negative_counts: bool, rng: np.random.Generator
    ) -> list:
        regions = regions[: self.max_num_points]
        per_region = [self._draw(r, self._count(negative_counts, rng), rng) for r in regions]
        per_region = [p for p in per_region if p]
        if len(per_region) <= 1:
            return per_region[0] if per_region else []
        # several objects: one click in each, then more clicks from the union of their regions
        points = [p[0] for p in per_region]
        union = [(coords, prob / len(regions)) for region in regions for coords, prob in region]
        extra = self._draw(union, self._count(True, rng), rng)
        room = self.max_num_points - len(points)
        if len(extra) > room:
            extra = [extra[i] for i in rng.choice(len(extra), size=room, replace=False)]
        return points + extra

    def _pad(self, points: list) -> np.ndarray:
        out = np.full((self.max_num_points, 3), -1.0, dtype=np.float32)
        if points:
            yx = np.asarray(points[: self.max_num_points], dtype=np.float32)
            out[: len(yx), :2] = yx
            out[: len(yx), 2] = SAMPLED_CLICK_INDEX
        return out
