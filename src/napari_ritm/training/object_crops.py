"""Object-centred training crops at the scales the window predictor shows the network.

The window predictor (:mod:`napari_ritm.inference.window`) shows the network one object near the
middle of its input, enlarged when it is small (2x with the default settings) and reduced when
it is large, so that any object spans a few dozen to ~180 network pixels. The RITM recipe instead
resizes whole images by 0.75-1.40, so a 20 px nucleus stays 15-28 px and a 400 px cell never
fits a crop. :class:`ObjectCropper` replays the predictor's windows on a chosen object and cuts
and resizes only that region of the image, so a 1000 px image costs no more than a 200 px one.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from napari_ritm.training.augment import Augmenter


def object_boxes(labels: np.ndarray, min_area: int) -> dict[int, tuple[int, int, int, int]]:
    """Bounding boxes (rmin, rmax, cmin, cmax; inclusive) of the objects of at least
    ``min_area`` pixels, by id."""
    areas = np.bincount(labels.ravel().clip(0))
    out = {}
    for index, found in enumerate(ndimage.find_objects(labels.clip(0)), start=1):
        if found is not None and index < len(areas) and areas[index] >= min_area:
            rows, cols = found
            out[index] = (rows.start, rows.stop - 1, cols.start, cols.stop - 1)
    return out


class ObjectCropper:
    """A random crop around one object, at a scale the window predictor would show it.

    ``cropper(image, labels, boxes, rng)``: image (H, W, 3) uint8, labels (H, W) int ids (or
    (H, W, K): several label planes cut alike, e.g. the neighbouring slices of a stack; the boxes
    are those of the first), boxes from :func:`object_boxes`; returns (image (ch, cw, 3)
    float32 in [0, 1], labels (ch, cw[, K]) int32, target id). Each crop replays one view of
    :class:`~napari_ritm.inference.window.WindowPredictor` (``window``: its settings) on a
    uniformly chosen object of size ``d``:

    - with probability ``first_view_prob``, a first-click window: the smallest of
      ``first_window * growth**k`` that holds 1.2 ``d`` (or, with ``cut_prob``, one of the up to
      ``cut_levels`` windows before it, equally likely, which cut the object as before a growth
      step: a 96 px window inside a 400 px particle shows only the particle, and the mask must
      fill it for the window to grow), centred near a point of the object;
    - else a zoom window of ``expansion_ratio`` x ``d`` (up to 1.3 times more: earlier clicks
      may widen it), at least ``min_crop_size``, centred on the object.

    The window is shifted inside the image as the predictor does, and shown at the predictor's
    scale ``net_size / max(window side, min_crop_size)`` times a log-uniform ``jitter``; the
    crop is its centre. Flips, 90-degree rotations and intensity changes follow ``augmenter``
    (its resize is not used). Zero padding only where the image is smaller than the crop.
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        *,
        window: dict | None = None,
        first_view_prob: float = 0.5,
        cut_prob: float = 0.25,
        cut_levels: int = 1,
        jitter: tuple[float, float] = (0.75, 1.33),
        augmenter: Augmenter | None = None,
    ) -> None:
        from napari_ritm.inference.modes import WINDOW_SETTINGS

        w = {**WINDOW_SETTINGS, **(window or {})}
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.net_size = int(w["net_size"])
        self.first_window = int(w["first_window"])
        self.max_window = int(w["max_window"])
        self.growth = float(w.get("growth", 2.0))
        self.expansion_ratio = float(w.get("expansion_ratio", 1.4))
        self.min_crop_size = int(w["min_crop_size"])
        self.first_view_prob = first_view_prob
        self.cut_prob = cut_prob
        self.cut_levels = int(cut_levels)
        self.jitter = jitter
        self.augmenter = augmenter or Augmenter(self.crop_size, scale_range=None)

    def view(
        self, box: tuple[int, int, int, int], image_hw: tuple[int, int], rng: np.random.Generator
    ) -> tuple[float, np.ndarray]:
        """(scale, window centre (y, x) in image pixels) of one predictor view of the object
        with bounding box ``box``."""
        rmin, rmax, cmin, cmax = box
        extent = np.array([rmax - rmin + 1, cmax - cmin + 1], dtype=float)
        size = float(extent.max())
        centre = np.array([0.5 * (rmin + rmax), 0.5 * (cmin + cmax)])
        if rng.random() < self.first_view_prob:
            side, levels = float(self.first_window), 0
            while side < 1.2 * size and side < self.max_window:
                side, levels = side * self.growth, levels + 1
            if levels and rng.random() < self.cut_prob:
                deepest = min(levels, self.cut_levels)
                # one level draws nothing more, so runs started before cut_levels keep their stream
                side /= self.growth ** (int(rng.integers(1, deepest + 1)) if deepest > 1 else 1)
            # the click: near the middle of the object, as users and the clicker place it
            centre = centre + rng.uniform(-0.25, 0.25, size=2) * extent
            sides = np.minimum(side, image_hw)
        else:
            side = max(self.expansion_ratio * size * rng.uniform(1.0, 1.3), self.min_crop_size)
            sides = np.minimum(extent * side / size, image_hw)
        scale = self.net_size / max(float(sides.max()), self.min_crop_size)
        scale *= math.exp(rng.uniform(*(math.log(v) for v in self.jitter)))
        return scale, centre

    def __call__(
        self,
        image: np.ndarray,
        labels: np.ndarray,
        boxes: dict[int, tuple[int, int, int, int]],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        ids = sorted(boxes)
        target = ids[int(rng.integers(len(ids)))]
        scale, centre = self.view(boxes[target], labels.shape[:2], rng)
        crop = np.array(self.crop_size)
        region = (crop / scale).round().astype(int).clip(1)
        top_left = (centre - (region - 1) / 2).round().astype(int)
        # shifted inside the image where it fits, as the predictor's windows are
        top_left = np.clip(top_left, 0, np.maximum(np.array(labels.shape[:2]) - region, 0))
        img, lab = _cut(image, labels, top_left, region)
        ch, cw = self.crop_size
        if img.shape[:2] != (ch, cw):
            img = resize(img, (ch, cw, 3), order=1, preserve_range=True, anti_aliasing=scale < 0.5)
            img = img.round().astype(np.uint8)
            lab = resize(lab, (ch, cw, *lab.shape[2:]), order=0, preserve_range=True,
                         anti_aliasing=False)
        lab = lab.astype(np.int32)
        aug = self.augmenter
        if aug.hflip and rng.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        if aug.vflip and rng.random() < 0.5:
            img, lab = img[::-1], lab[::-1]
        if aug.rot90 and ch == cw:
            k = int(rng.integers(4))
            img, lab = np.rot90(img, k), np.rot90(lab, k)
        img, lab = np.ascontiguousarray(img), np.ascontiguousarray(lab)
        return aug.intensity(img, rng), lab, target


def _cut(
    image: np.ndarray, labels: np.ndarray, top_left: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ``size`` region at ``top_left`` (may lie partly outside: zeros there)."""
    h, w = labels.shape[:2]
    out_img = np.zeros((*size, image.shape[2]), dtype=image.dtype)
    out_lab = np.zeros((*size, *labels.shape[2:]), dtype=labels.dtype)
    r0, c0 = max(top_left[0], 0), max(top_left[1], 0)
    r1, c1 = min(top_left[0] + size[0], h), min(top_left[1] + size[1], w)
    if r0 < r1 and c0 < c1:
        dst = (slice(r0 - top_left[0], r1 - top_left[0]), slice(c0 - top_left[1], c1 - top_left[1]))
        out_img[dst] = image[r0:r1, c0:c1]
        out_lab[dst] = labels[r0:r1, c0:c1]
    return out_img, out_lab
