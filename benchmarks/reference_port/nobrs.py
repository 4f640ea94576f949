"""A straightforward port of the official RITM NoBRS predictor, the yardstick of click_latency.py.

Written for this benchmark (no code copied) from the behaviour documented in shared/ref/README.md:
the official ``BasePredictor`` with its transform chain ``[ZoomIn, LimitLongestSide, SigmoidForPred,
AddHorizontalFlip]``, computed the way the official code computes it on every click:

- the network input is rebuilt each click: ``torch.cat((original_image, prev_prediction))`` at full
  image size;
- ZoomIn crops and resizes that tensor, clicks become Python floats, AddHorizontalFlip
  concatenates the mirrored copy (batch 2);
- the network is the package's :class:`~napari_ritm.model.ritm_net.RITMNet` run the plain way
  (float32, BatchNorm unfused, the full OCR attention, both outputs upsampled), under
  ``torch.no_grad()`` as the official ``evaluate_sample`` runs it;
- the inverse transforms run in reverse order on tensors; ZoomIn keeps its previous probabilities
  as a NumPy copy (``.cpu().numpy()``) and the result is returned as ``.cpu().numpy()[0, 0]``.

Only what this benchmark drives is ported: one object, clicks with index offset 0, no external
initial mask, no ``net_clicks_limit``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["RefClick", "ReferencePredictor"]


@dataclass(frozen=True)
class RefClick:
    """A click as the official clicker records it: (y, x) coordinates, sign, order index."""

    y: float
    x: float
    is_positive: bool
    indx: int

    def moved(self, y: float, x: float) -> RefClick:
        return RefClick(y, x, self.is_positive, self.indx)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def _roi_image(image_nd: torch.Tensor, roi, target_size) -> torch.Tensor:
    rmin, rmax, cmin, cmax = roi
    height, width = rmax - rmin + 1, cmax - cmin + 1
    if isinstance(target_size, tuple):
        new_h, new_w = target_size
    else:
        scale = target_size / max(height, width)
        new_h, new_w = int(round(height * scale)), int(round(width * scale))
    return _resize(image_nd[:, :, rmin : rmax + 1, cmin : cmax + 1], (new_h, new_w))


def _object_roi(pred_mask: np.ndarray, clicks, expansion_ratio: float, min_crop_size: int):
    pred_mask = pred_mask.copy()
    for click in clicks:
        if click.is_positive:
            pred_mask[int(click.y), int(click.x)] = 1
    rows, cols = np.any(pred_mask, axis=1), np.any(pred_mask, axis=0)
    rmin, rmax = np.where(rows)[0][[0, -1]]
    cmin, cmax = np.where(cols)[0][[0, -1]]
    rcenter, ccenter = 0.5 * (rmin + rmax), 0.5 * (cmin + cmax)
    height = max(expansion_ratio * (rmax - rmin + 1), min_crop_size)
    width = max(expansion_ratio * (cmax - cmin + 1), min_crop_size)
    h, w = pred_mask.shape
    return (
        max(0, int(round(rcenter - 0.5 * height))),
        min(h - 1, int(round(rcenter + 0.5 * height))),
        max(0, int(round(ccenter - 0.5 * width))),
        min(w - 1, int(round(ccenter + 0.5 * width))),
    )


def _bbox_iou(a, b) -> float:
    def interval(s0, s1, t0, t1):
        return max(0, min(s1, t1) - max(s0, t0) + 1) / max(1e-6, max(s1, t1) - min(s0, t0) + 1)

    return interval(a[0], a[1], b[0], b[1]) * interval(a[2], a[3], b[2], b[3])


def _clicks_inside(roi, clicks) -> bool:
    rmin, rmax, cmin, cmax = roi
    return all(rmin <= c.y < rmax and cmin <= c.x < cmax for c in clicks if c.is_positive)


class _ZoomIn:
    """Official ZoomIn: ROI from the previous probabilities, kept while it still fits."""

    def __init__(self, target_size=400, skip_clicks=1, expansion_ratio=1.4, min_crop_size=200,
                 recompute_thresh_iou=0.5, prob_thresh=0.5) -> None:
        self.target_size, self.skip_clicks = target_size, skip_clicks
        self.expansion_ratio, self.min_crop_size = expansion_ratio, min_crop_size
        self.recompute_thresh_iou, self.prob_thresh = recompute_thresh_iou, prob_thresh
        self.reset()

    def reset(self) -> None:
        self._input_shape = None
        self._prev_probs = None
        self._object_roi = None
        self._roi_image = None

    def transform(self, image_nd: torch.Tensor, clicks):
        if len(clicks) <= self.skip_clicks:
            return image_nd, clicks
        self._input_shape = image_nd.shape
        candidate = None
        if self._prev_probs is not None:
            mask = (self._prev_probs > self.prob_thresh)[0, 0]
            if mask.sum() > 0:
                candidate = _object_roi(mask, clicks, self.expansion_ratio, self.min_crop_size)
        if candidate is None:
            if self.skip_clicks >= 0:
                return image_nd, clicks
            candidate = (0, image_nd.shape[2] - 1, 0, image_nd.shape[3] - 1)
        if (self._object_roi is None or not _clicks_inside(self._object_roi, clicks)
                or _bbox_iou(candidate, self._object_roi) < self.recompute_thresh_iou):
            self._object_roi = candidate
        self._roi_image = _roi_image(image_nd, self._object_roi, self.target_size)
        rmin, rmax, cmin, cmax = self._object_roi
        crop_h, crop_w = self._roi_image.shape[2:]
        moved = [c.moved(crop_h * (c.y - rmin) / (rmax - rmin + 1),
                         crop_w * (c.x - cmin) / (cmax - cmin + 1)) for c in clicks]
        return self._roi_image, moved

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        if self._object_roi is None:
            self._prev_probs = prob_map.cpu().numpy()
            return prob_map
        rmin, rmax, cmin, cmax = self._object_roi
        prob_map = _resize(prob_map, (rmax - rmin + 1, cmax - cmin + 1))
        if self._prev_probs is not None:
            new_map = torch.zeros(*self._prev_probs.shape, dtype=prob_map.dtype)
            new_map[:, :, rmin : rmax + 1, cmin : cmax + 1] = prob_map
        else:
            new_map = prob_map
        self._prev_probs = new_map.cpu().numpy()
        return new_map

    def wants_recalculation(self) -> bool:
        if self._prev_probs is None or self._object_roi is not None or self.skip_clicks > 0:
            return False
        mask = (self._prev_probs > self.prob_thresh)[0, 0]
        if mask.sum() == 0:
            return False
        roi = _object_roi(mask, [], self.expansion_ratio, self.min_crop_size)
        h, w = self._input_shape[2], self._input_shape[3]
        return _bbox_iou(roi, (0, h - 1, 0, w - 1)) < 0.5


class _LimitLongestSide:
    """Official LimitLongestSide: shrink an input longer than ``max_size``, resize back after."""

    def __init__(self, max_size: int = 800) -> None:
        self.max_size = max_size
        self._size = None

    def transform(self, image_nd: torch.Tensor, clicks):
        h, w = image_nd.shape[2:4]
        self._size = None
        if max(h, w) <= self.max_size:
            return image_nd, clicks
        self._size = (h, w)
        small = _roi_image(image_nd, (0, h - 1, 0, w - 1), self.max_size)
        sh, sw = small.shape[2:]
        return small, [c.moved(sh * c.y / h, sw * c.x / w) for c in clicks]

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        return prob_map if self._size is None else _resize(prob_map, self._size)


class _Flip:
    """Official AddHorizontalFlip: batch of (input, mirror); average the logits back."""

    def transform(self, image_nd: torch.Tensor, clicks):
        width = image_nd.shape[3]
        return torch.cat([image_nd, torch.flip(image_nd, dims=[3])], dim=0), [
            clicks, [c.moved(c.y, width - c.x - 1) for c in clicks]
        ]

    def inv_transform(self, logits: torch.Tensor) -> torch.Tensor:
        half = logits.shape[0] // 2
        return 0.5 * (logits[:half] + torch.flip(logits[half:], dims=[3]))


class ReferencePredictor:
    """The official NoBRS predictor, ported plainly. ``net`` is a plain ``RITMNet`` (eval mode).

    ``set_input_image(image)``: (H, W, 3) uint8 RGB. ``get_prediction(clicks)``: ``clicks`` is the
    list of ``(y, x, is_positive)`` made so far (oldest first); returns float32 (H, W)
    probabilities. Defaults are the official evaluation settings; the official demo (and the
    napari widget) use ``skip_clicks=-1, max_size=800``.
    """

    def __init__(self, net, *, zoom_in: bool = True, target_size=400, skip_clicks: int = 1,
                 expansion_ratio: float = 1.4, min_crop_size: int = 200, flip: bool = True,
                 max_size: int | None = None) -> None:
        self.net = net
        self.zoom_in = (_ZoomIn(target_size=target_size, skip_clicks=skip_clicks,
                                expansion_ratio=expansion_ratio, min_crop_size=min_crop_size)
                        if zoom_in else None)
        self.transforms: list = [self.zoom_in] if zoom_in else []
        if max_size is not None:
            self.transforms.append(_LimitLongestSide(max_size))
        self.with_flip = flip
        self.original_image = None
        self.prev_prediction = None

    def set_input_image(self, image: np.ndarray) -> None:
        for t in self.transforms:
            if hasattr(t, "reset"):
                t.reset()
        # torchvision ToTensor: uint8 HWC -> float32 CHW / 255
        image_nd = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255)
        self.original_image = image_nd.unsqueeze(0)
        self.prev_prediction = torch.zeros_like(self.original_image[:, :1])

    def sync_previous(self, probs: np.ndarray) -> None:
        """Replace the stored previous prediction by ``probs`` (H, W), for step-wise comparisons."""
        self.prev_prediction = torch.from_numpy(np.array(probs, dtype=np.float32))[None, None]
        if self.zoom_in is not None and self.zoom_in._prev_probs is not None:
            self.zoom_in._prev_probs = self.prev_prediction.numpy()

    def get_prediction(self, clicks) -> np.ndarray:
        with torch.no_grad():
            return self._predict([RefClick(float(y), float(x), bool(p), i)
                                  for i, (y, x, p) in enumerate(clicks)])

    def _predict(self, clicks: list[RefClick]) -> np.ndarray:
        input_image = torch.cat((self.original_image, self.prev_prediction), dim=1)
        image_nd, clicks_now = input_image, clicks
        for t in self.transforms:
            image_nd, clicks_now = t.transform(image_nd, clicks_now)
        clicks_lists = [clicks_now]
        if self.with_flip:
            image_nd, clicks_lists = _Flip().transform(image_nd, clicks_now)
        points = self._points_nd(clicks_lists)
        logits = self.net(image_nd[:, :3], points, image_nd[:, 3:])["instances"]
        prediction = _resize(logits, image_nd.shape[2:])
        if self.with_flip:
            prediction = _Flip().inv_transform(prediction)
        prediction = torch.sigmoid(prediction)
        for t in reversed(self.transforms):
            prediction = t.inv_transform(prediction)
        if self.zoom_in is not None and self.zoom_in.wants_recalculation():
            return self._predict(clicks)
        self.prev_prediction = prediction
        return prediction.cpu().numpy()[0, 0]

    @staticmethod
    def _points_nd(clicks_lists) -> torch.Tensor:
        n = max(1, max(max(sum(c.is_positive for c in cl), sum(not c.is_positive for c in cl))
                       for cl in clicks_lists))
        rows = []
        for cl in clicks_lists:
            pos = [(c.y, c.x, c.indx) for c in cl if c.is_positive]
            neg = [(c.y, c.x, c.indx) for c in cl if not c.is_positive]
            pad = [(-1, -1, -1)]
            rows.append(pos + (n - len(pos)) * pad + neg + (n - len(neg)) * pad)
        return torch.tensor(rows)
