"""The simulated user of the RITM evaluation: where the next click goes.

The rule (as in the official evaluation, with scipy's exact Euclidean distance transform in place
of OpenCV's ``DIST_L2`` with mask size 0, which is exact as well):

1. false negatives ``fn = gt == 1 & ~pred`` and false positives ``fp = gt != 1 & pred``, both
   restricted to pixels that are not ignored (``gt != ignore_label``);
2. each map is padded with one pixel of zeros (so the image border counts as boundary) and its
   distance transform taken, then the padding is cropped;
3. pixels already clicked are set to 0;
4. the click is positive iff ``max(dt_fn) > max(dt_fp)`` (a tie gives a negative click) and lies at
   the first pixel, in row-major order, that equals the maximum of the chosen map.
When both maps are all zero the answer is a negative click at (0, 0), as in the official code.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from napari_ritm.inference.clicks import Click


def _inner_distance(mask: np.ndarray) -> np.ndarray:
    """Distance of each pixel of ``mask`` to the nearest pixel outside it or outside the image."""
    return distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]


class Clicker:
    """Simulated clicks for one object.

    ``gt``: (H, W) integer array, 1 = object, ``ignore_label`` = ignored, anything else background.
    :meth:`next_click` takes the current binary prediction (H, W) bool and returns a
    :class:`~napari_ritm.inference.clicks.Click` with integer pixel coordinates, records it in
    ``clicks`` and excludes its pixel from later clicks.
    """

    def __init__(self, gt: np.ndarray, *, ignore_label: int = -1) -> None:
        gt = np.asarray(gt)
        if gt.ndim != 2:
            raise ValueError(f"gt must be 2D, got shape {gt.shape}")
        self.object = gt == 1
        self.valid = gt != ignore_label
        self.not_clicked = np.ones(gt.shape, dtype=bool)
        self.clicks: list[Click] = []

    def add_click(self, click: Click) -> None:
        """Record a click made elsewhere (its pixel is excluded from later clicks)."""
        self.not_clicked[int(click.y), int(click.x)] = False
        self.clicks.append(click)

    def next_click(self, pred: np.ndarray) -> Click:
        """The click that fixes the largest error region of ``pred``, recorded in ``clicks``."""
        pred = np.asarray(pred, dtype=bool)
        if pred.shape != self.object.shape:
            raise ValueError(f"prediction shape {pred.shape} != gt shape {self.object.shape}")
        fn = self.object & ~pred & self.valid
        fp = ~self.object & pred & self.valid
        dt_fn = _inner_distance(fn) * self.not_clicked
        dt_fp = _inner_distance(fp) * self.not_clicked
        positive = bool(dt_fn.max() > dt_fp.max())
        chosen = dt_fn if positive else dt_fp
        y, x = np.unravel_index(int(np.argmax(chosen)), chosen.shape)
        click = Click(int(y), int(x), positive)
        self.add_click(click)
        return click
