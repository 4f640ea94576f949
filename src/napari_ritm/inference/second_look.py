"""A second look for a first click that may have landed inside an object larger than its window.

The first click's window (``first_window`` px) can lie wholly inside a large object: a 96 px
window inside a 300 px particle shows only the particle. The network must then fill the window
for it to grow, and some models (or checkpoints) instead return a small, unsure blob around the
click. Such a blob has two tells: the network is unsure of it (mean probability inside under
``max_mean_prob``), and its edge is no edge in the image (the intensity inside and in a ring
around it differ by less than ``max_contrast`` standard deviations of the window). A blob under
``min_area`` of the window is left alone: on the val_select images no first click inside a large
object gave one that small (the smallest kept: 7 %), while small unsure nuclei and axons did
(a wider pass for nothing, about 0.1 s).
:func:`looks_like_blob` reads them; :func:`surrounds` says whether the object seen in a wider
window reaches past the first window on every side (the first window lay inside it). Chosen on
the val_select images (the window predictor's ``second_look``).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_ritm.inference.base import LocalProbs
from napari_ritm.inference.clicks import Click
from napari_ritm.inference.transforms import Roi

__all__ = ["component_at", "looks_like_blob", "surrounds"]


def looks_like_blob(
    local: LocalProbs,
    pixels: np.ndarray,
    thresh: float,
    *,
    max_mean_prob: float = 0.75,
    max_contrast: float = 1.0,
    min_area: float = 0.05,
    ring: int = 4,
) -> bool:
    """Whether the mask ``local.probs > thresh`` covers at least ``min_area`` of the window, is
    unsure and has no image edge around it. ``pixels``: the window's image, (h, w, C) as the
    network reads it."""
    mask = local.probs > thresh
    if mask.mean() < min_area:
        return False
    around = ndimage.binary_dilation(mask, iterations=ring) & ~mask
    if not around.any():
        return False
    gray = np.asarray(pixels, dtype=np.float64).mean(axis=-1)
    contrast = abs(gray[mask].mean() - gray[around].mean()) / (gray.std() + 1e-6)
    return float(local.probs[mask].mean()) < max_mean_prob and contrast < max_contrast


def component_at(local: LocalProbs, click: Click, thresh: float) -> np.ndarray | None:
    """The connected part of ``local.probs > thresh`` under ``click`` (window coordinates,
    (h, w) bool), or None when the click is not on the mask."""
    mask = local.probs > thresh
    regions, _ = ndimage.label(mask)
    rmin, _, cmin, _ = local.roi
    r = min(max(int(click.y) - rmin, 0), mask.shape[0] - 1)
    c = min(max(int(click.x) - cmin, 0), mask.shape[1] - 1)
    return regions == regions[r, c] if regions[r, c] else None


def surrounds(part: np.ndarray, part_roi: Roi, inner: Roi) -> bool:
    """Whether ``part`` ((h, w) bool inside window ``part_roi``) reaches past window ``inner`` on
    all four sides."""
    rows = np.flatnonzero(part.any(axis=1)) + part_roi[0]
    cols = np.flatnonzero(part.any(axis=0)) + part_roi[2]
    return bool(rows.size and rows[0] < inner[0] and rows[-1] > inner[1]
                and cols[0] < inner[2] and cols[-1] > inner[3])
