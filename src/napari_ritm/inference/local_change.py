"""Correction clicks that change a region only where the user clicked.

After a correction click the network predicts the whole object again. On a label that was almost
right (one another tool made) this can drop a lobe or bleed into a neighbour far from the
click, so that the correction makes the mask worse.
:func:`keep_change_at` keeps, of what changed between the mask before the click and the new
one, the region connected to the clicked pixel and every thin change (an outline that moved by
at most ``thin`` times the radius of the mask before, anywhere); a wider change away from the
click is undone. FocalClick's progressive merge (Chen et al., CVPR 2022) keeps only the
clicked region; keeping the thin changes too lets one click still fix an outline that is too
tight or too loose all round (docs/evaluation.md has both, measured with benchmarks/refine.py).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_ritm.inference.base import LocalProbs
from napari_ritm.inference.clicks import Click
from napari_ritm.inference.transforms import Roi

__all__ = ["keep_change_at", "union_roi"]


def union_roi(a: Roi, b: Roi) -> Roi:
    """The smallest window (rmin, rmax, cmin, cmax) holding windows ``a`` and ``b``."""
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def keep_change_at(before: LocalProbs, after: LocalProbs, click: Click, thresh: float,
                   thin: float) -> LocalProbs:
    """``after`` (the prediction with ``click``) where the mask ``probs > thresh`` changed in
    the region (4-connected) holding the clicked pixel or in a thin region: half its width at
    most ``thin`` times the equivalent radius of the mask before (sqrt(area / pi)); ``before``
    elsewhere. ``after`` as it is when the click did not change its own pixel (the prediction
    then has nothing to anchor to). Returns LocalProbs over the window that holds both."""
    roi = union_roi(before.roi, after.roi)
    old, new = before.crop(roi), after.crop(roi)
    was = old > thresh
    changed = was != (new > thresh)
    row, col = round(click.y) - roi[0], round(click.x) - roi[2]
    if not (0 <= row < changed.shape[0] and 0 <= col < changed.shape[1]) or not changed[row, col]:
        return after
    regions, count = ndimage.label(changed)  # 4-connected
    limit = thin * np.sqrt(np.count_nonzero(was) / np.pi)
    take = np.ones(count + 1, dtype=bool)
    take[0] = False
    take[regions[ndimage.distance_transform_edt(changed) > limit]] = False  # the wide ones
    take[regions[row, col]] = True
    return LocalProbs(roi, np.where(take[regions], new, old), before.shape)
