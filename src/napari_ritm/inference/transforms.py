"""The geometric test-time transforms of the RITM predictor: ZoomIn, LimitLongestSide, flip.

Each transform maps the network input (image + previous-mask channel) and the click coordinates
forwards, and maps the network output back. The rules follow the official NoBRS predictor
exactly (see ``shared/ref/README.md``): bilinear resizing with ``align_corners=True``, float
click mapping ``y' = H_out * (y - rmin) / (rmax - rmin + 1)``, Python (banker's) rounding of
sizes and ROI corners, flip averaging on logits.

ROIs are ``(rmin, rmax, cmin, cmax)`` with inclusive ends, in image pixels.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from napari_ritm.inference.clicks import Click

__all__ = [
    "Roi",
    "ZoomIn",
    "LimitLongestSide",
    "resize",
    "crop_resize",
    "map_coords",
    "paste",
    "scaled_size",
    "bbox_iou",
    "flip_batch",
    "flip_coords",
    "merge_flipped",
]

Roi = tuple[int, int, int, int]


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of an NCHW tensor to ``size`` (h, w) with ``align_corners=True``."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def crop_resize(x: torch.Tensor, roi: Roi, size: tuple[int, int]) -> torch.Tensor:
    """The ROI of an NCHW tensor, resized to ``size`` (h, w)."""
    rmin, rmax, cmin, cmax = roi
    return resize(x[:, :, rmin : rmax + 1, cmin : cmax + 1], size)


def map_coords(coords: np.ndarray, roi: Roi, size: tuple[int, int]) -> np.ndarray:
    """(…, 2) float64 (y, x) in image pixels -> pixels of the ROI resized to ``size`` (h, w)."""
    rmin, rmax, cmin, cmax = roi
    out = np.empty_like(coords, dtype=np.float64)
    out[..., 0] = size[0] * (coords[..., 0] - rmin) / (rmax - rmin + 1)
    out[..., 1] = size[1] * (coords[..., 1] - cmin) / (cmax - cmin + 1)
    return out


def paste(probs: torch.Tensor, roi: Roi, image_hw: tuple[int, int]) -> torch.Tensor:
    """Resize (N,1,h,w) probabilities to the ROI and paste them into zeros of ``image_hw``."""
    rmin, rmax, cmin, cmax = roi
    probs = resize(probs, (rmax - rmin + 1, cmax - cmin + 1))
    if roi == (0, image_hw[0] - 1, 0, image_hw[1] - 1):
        return probs
    full = probs.new_zeros((probs.shape[0], probs.shape[1], *image_hw))
    full[:, :, rmin : rmax + 1, cmin : cmax + 1] = probs
    return full


def scaled_size(h: int, w: int, target: int | tuple[int, int]) -> tuple[int, int]:
    """Output size for an ``h`` x ``w`` input: a (h, w) target as is; an int sets the long side
    (``round(h * target / max(h, w))`` with Python rounding, as the official code)."""
    if isinstance(target, tuple):
        return int(target[0]), int(target[1])
    scale = target / max(h, w)
    return int(round(h * scale)), int(round(w * scale))


def bbox_iou(a: Roi, b: Roi) -> float:
    """The official box "IoU": row-interval IoU times column-interval IoU (inclusive ends)."""

    def interval_iou(s0: int, s1: int, t0: int, t1: int) -> float:
        inter = max(0, min(s1, t1) - max(s0, t0) + 1)
        union = max(1e-6, max(s1, t1) - min(s0, t0) + 1)
        return inter / union

    return interval_iou(a[0], a[1], b[0], b[1]) * interval_iou(a[2], a[3], b[2], b[3])


def _object_roi(
    mask: np.ndarray,
    clicks: Sequence[Click],
    expansion_ratio: float,
    min_crop_size: int,
) -> Roi:
    """Bbox of ``mask`` plus the pixels ``(int(y), int(x))`` of the positive clicks, expanded about
    its centre by ``expansion_ratio`` (each side at least ``min_crop_size``), corners rounded with
    Python ``round`` and clamped to the image."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    rmin, rmax, cmin, cmax = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    for click in clicks:
        if click.positive:
            r, c = int(click.y), int(click.x)
            rmin, rmax, cmin, cmax = min(rmin, r), max(rmax, r), min(cmin, c), max(cmax, c)

    rcenter, ccenter = 0.5 * (rmin + rmax), 0.5 * (cmin + cmax)
    height = max(expansion_ratio * (rmax - rmin + 1), min_crop_size)
    width = max(expansion_ratio * (cmax - cmin + 1), min_crop_size)
    h, w = mask.shape
    return (
        max(0, round(rcenter - 0.5 * height)),
        min(h - 1, round(rcenter + 0.5 * height)),
        max(0, round(ccenter - 0.5 * width)),
        min(w - 1, round(ccenter + 0.5 * width)),
    )


def _positive_clicks_inside(roi: Roi, clicks: Sequence[Click]) -> bool:
    """Half-open check ``rmin <= y < rmax`` and ``cmin <= x < cmax`` for every positive click."""
    rmin, rmax, cmin, cmax = roi
    return all(rmin <= c.y < rmax and cmin <= c.x < cmax for c in clicks if c.positive)


class ZoomIn:
    """Chooses the region of interest the network looks at (RITM's ZoomIn).

    Input per call: the previous full-size probability map (H, W) float (or None) and the clicks.
    Output: the ROI to crop (``None`` = feed the whole image un-cropped). The crop is resized to
    ``target_size`` (int: long side; (h, w): fixed size). State: ``roi`` (kept across clicks
    until a positive click falls outside it or the new candidate's box IoU drops below
    ``recompute_thresh_iou``) and ``roi_changed`` (True when this call (re)assigned it).
    ``skip_clicks``: ZoomIn stays off while #clicks <= skip_clicks; -1 makes it use the whole
    image as ROI even before there is a previous prediction (the official demo setting).
    """

    def __init__(self, *, target_size: int | tuple[int, int] = 400, skip_clicks: int = 1,
                 expansion_ratio: float = 1.4, min_crop_size: int = 200,
                 recompute_thresh_iou: float = 0.5, prob_thresh: float = 0.5) -> None:
        self.target_size, self.skip_clicks = target_size, skip_clicks
        self.expansion_ratio, self.min_crop_size = expansion_ratio, min_crop_size
        self.recompute_thresh_iou, self.prob_thresh = recompute_thresh_iou, prob_thresh
        self.roi: Roi | None = None
        self.roi_changed = False

    def select_roi(
        self, prev_probs: np.ndarray | None, clicks: Sequence[Click], image_hw: tuple[int, int]
    ) -> Roi | None:
        """Update the ROI for this call and return it, or None to use the whole image un-cropped."""
        self.roi_changed = False
        if len(clicks) <= self.skip_clicks:
            return None
        candidate = None
        if prev_probs is not None:
            mask = prev_probs > self.prob_thresh
            if mask.any():
                candidate = _object_roi(mask, clicks, self.expansion_ratio, self.min_crop_size)
        if candidate is None:
            if self.skip_clicks >= 0:
                return None
            candidate = (0, image_hw[0] - 1, 0, image_hw[1] - 1)
        if (
            self.roi is None
            or not _positive_clicks_inside(self.roi, clicks)
            or bbox_iou(candidate, self.roi) < self.recompute_thresh_iou
        ):
            self.roi = candidate
            self.roi_changed = True
        return self.roi

    def crop_size(self, roi: Roi) -> tuple[int, int]:
        """Network-input size (h, w) of the resized crop of ``roi``."""
        return scaled_size(roi[1] - roi[0] + 1, roi[3] - roi[2] + 1, self.target_size)

    def wants_second_pass(self, probs: np.ndarray) -> bool:
        """The official re-prediction rule (only reachable with ``skip_clicks == 0``): no ROI yet,
        and the object in ``probs`` (H, W) is so small that its ROI's box IoU with the image
        is < 0.5."""
        if self.roi is not None or self.skip_clicks > 0:
            return False
        mask = probs > self.prob_thresh
        if not mask.any():
            return False
        h, w = mask.shape
        roi = _object_roi(mask, (), self.expansion_ratio, self.min_crop_size)
        return bbox_iou(roi, (0, h - 1, 0, w - 1)) < 0.5

    def get_state(self) -> tuple[Roi | None, bool]:
        return self.roi, self.roi_changed

    def set_state(self, state: tuple[Roi | None, bool]) -> None:
        self.roi, self.roi_changed = state

    def reset(self) -> None:
        self.roi, self.roi_changed = None, False


class LimitLongestSide:
    """Shrinks a network input whose long side exceeds ``max_size`` (RITM's LimitLongestSide).

    ``size_for(h, w)`` returns the reduced (h, w) (long side = ``max_size``, Python rounding) or
    None when the input is small enough. Stateless: the inverse resize uses the size of this call.
    """

    def __init__(self, max_size: int = 800) -> None:
        self.max_size = max_size

    def size_for(self, h: int, w: int) -> tuple[int, int] | None:
        if max(h, w) <= self.max_size:
            return None
        return scaled_size(h, w, self.max_size)


def flip_batch(x: torch.Tensor) -> torch.Tensor:
    """(1,C,H,W) -> (2,C,H,W): the input and its horizontal mirror."""
    return torch.cat([x, torch.flip(x, dims=[3])], dim=0)


def flip_coords(coords: np.ndarray, width: int) -> np.ndarray:
    """(K, 2) (y, x) -> (2, K, 2): the clicks and their mirror ``x' = width - x - 1``."""
    mirrored = coords.copy()
    mirrored[:, 1] = width - coords[:, 1] - 1
    return np.stack([coords, mirrored])


def merge_flipped(logits: torch.Tensor) -> torch.Tensor:
    """(2,1,H,W) logits of an input and its mirror -> (1,1,H,W) average ``0.5 * (a + flip(b))``."""
    return 0.5 * (logits[:1] + torch.flip(logits[1:], dims=[3]))
