"""The window predictor: per-click cost and quality that do not depend on the image size.

The paper's predictor (:class:`~napari_ritm.inference.predictor.Predictor`) runs the first click
on the whole image; on a 2048 px tile a 20 px nucleus then spans a few network pixels. This
predictor never looks at more than one window of the image per network pass:

- **First click** (no mask yet): a square window of ``first_window`` image pixels centred on the
  click (shifted inside the image near its edges). While the predicted mask reaches a side of
  the window that is not the image's edge, the window grows by ``growth`` about its centre and
  the click is predicted again, up to ``max_window`` pixels.
- **Later clicks**: the ZoomIn rule of RITM around the mask and the positive clicks (bounding
  box times ``expansion_ratio``, each side at least ``min_crop_size``), kept while it still
  holds the clicks and overlaps the new box (box IoU >= 0.5); it grows like the first window
  when the mask reaches its border.

Every window is resized so that its long side is ``net_size`` (never enlarged more than
``net_size / min_crop_size``). The image is read one window at a time through a
:class:`PlaneReader`, so a lazy (dask, zarr) plane is never loaded whole; probabilities live in
the window only (:class:`LocalProbs`). Window sizes and the growth rule were chosen on the shared
val sets (benchmarks/window_rule.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from napari_ritm.inference.clicks import Click, encode_points
from napari_ritm.inference.transforms import (
    Roi,
    _positive_clicks_inside,
    bbox_iou,
    flip_batch,
    flip_coords,
    map_coords,
    merge_flipped,
    resize,
)

__all__ = ["ArrayPlane", "LocalProbs", "PlaneReader", "WindowPredictor", "WindowState"]


class PlaneReader(Protocol):
    """A 2D image read one window at a time: ``shape`` (H, W) and ``read(roi)``, which returns
    the pixels of ``roi`` (rmin, rmax, cmin, cmax; inclusive) as (h, w, 3) float32 in [0, 1]."""

    @property
    def shape(self) -> tuple[int, int]: ...

    def read(self, roi: Roi) -> np.ndarray: ...


class ArrayPlane:
    """A :class:`PlaneReader` over an in-memory or lazy array: (H, W) or (H, W, 3), uint8 (divided
    by 255) or float already in [0, 1]. Only the pixels of each window are read and converted."""

    def __init__(self, data) -> None:
        shape = tuple(int(s) for s in data.shape)
        if len(shape) == 3 and shape[2] == 1:
            data, shape = data[:, :, 0], shape[:2]
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 3):
            raise ValueError(
                f"expected an (H, W) or (H, W, 3) image, got shape {shape}; "
                "use normalize_image() for other layouts"
            )
        if min(shape[:2]) < 1:
            raise ValueError(f"the image is empty (shape {shape})")
        dtype = np.dtype(data.dtype)
        if dtype != np.uint8 and dtype.kind != "f":
            raise ValueError(
                f"expected a uint8 or float image, got {dtype}; use normalize_image() first"
            )
        self.data = data
        self.shape = shape[:2]

    def read(self, roi: Roi) -> np.ndarray:
        rmin, rmax, cmin, cmax = roi
        block = np.asarray(self.data[rmin : rmax + 1, cmin : cmax + 1])
        if block.dtype == np.uint8:
            block = block.astype(np.float32) / np.float32(255)
        else:
            block = block.astype(np.float32, copy=False)
            if not np.isfinite(block).all() or block.min() < 0 or block.max() > 1:
                raise ValueError(
                    "a float image must be finite and in [0, 1]; use normalize_image() first"
                )
        if block.ndim == 2:
            block = np.repeat(block[:, :, None], 3, axis=2)
        return block


@dataclass(frozen=True)
class LocalProbs:
    """Probabilities that are zero outside one window of an (H, W) image.

    ``roi``: the window (rmin, rmax, cmin, cmax), inclusive; ``probs``: (h, w) float32 in [0, 1]
    for its pixels; ``shape``: (H, W) of the image. Never modified in place once built.
    """

    roi: Roi
    probs: np.ndarray
    shape: tuple[int, int]

    @property
    def slices(self) -> tuple[slice, slice]:
        """Index of the window in the (H, W) image."""
        rmin, rmax, cmin, cmax = self.roi
        return slice(rmin, rmax + 1), slice(cmin, cmax + 1)

    def full(self) -> np.ndarray:
        """(H, W) float32: the window pasted into zeros."""
        out = np.zeros(self.shape, dtype=np.float32)
        out[self.slices] = self.probs
        return out

    def crop(self, roi: Roi) -> np.ndarray:
        """(h, w) float32 probabilities of another window ``roi`` (zeros outside this one)."""
        rmin, rmax, cmin, cmax = roi
        out = np.zeros((rmax - rmin + 1, cmax - cmin + 1), dtype=np.float32)
        r0, r1 = max(rmin, self.roi[0]), min(rmax, self.roi[1])
        c0, c1 = max(cmin, self.roi[2]), min(cmax, self.roi[3])
        if r0 <= r1 and c0 <= c1:
            out[r0 - rmin : r1 - rmin + 1, c0 - cmin : c1 - cmin + 1] = self.probs[
                r0 - self.roi[0] : r1 - self.roi[0] + 1, c0 - self.roi[2] : c1 - self.roi[2] + 1
            ]
        return out

    def bbox(self, thresh: float) -> Roi | None:
        """Image-pixel bounding box of ``probs > thresh``, or None when that mask is empty."""
        mask = self.probs > thresh
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return None
        return (
            self.roi[0] + int(rows[0]),
            self.roi[0] + int(rows[-1]),
            self.roi[2] + int(cols[0]),
            self.roi[2] + int(cols[-1]),
        )


@dataclass(frozen=True)
class WindowState:
    """A snapshot for undo: the clicks of the last prediction, its probabilities, the window."""

    clicks: tuple[Click, ...]
    probs: LocalProbs | None
    roi: Roi | None


def square_window(y: float, x: float, side: int, image_hw: tuple[int, int]) -> Roi:
    """A ``side`` x ``side`` window centred on pixel (y, x), shifted to lie inside the image
    (and cut to the image where it is smaller than ``side``)."""
    return tuple(  # type: ignore[return-value]
        v for centre, n in zip((y, x), image_hw) for v in _span(centre, side, n)
    )


def _span(centre: float, side: int, n: int) -> tuple[int, int]:
    side = min(int(side), n)
    start = round(centre - (side - 1) / 2)
    start = min(max(start, 0), n - side)
    return start, start + side - 1


def zoom_roi(
    box: Roi,
    clicks: Sequence[Click],
    expansion_ratio: float,
    min_side: int,
    image_hw: tuple[int, int],
) -> Roi:
    """RITM's ZoomIn window: the box ``box`` joined with the positive clicks' pixels, enlarged
    about its centre by ``expansion_ratio`` (each side at least ``min_side``), cut to the image."""
    rmin, rmax, cmin, cmax = box
    for c in clicks:
        if c.positive:
            r, k = int(c.y), int(c.x)
            rmin, rmax, cmin, cmax = min(rmin, r), max(rmax, r), min(cmin, k), max(cmax, k)
    height = max(expansion_ratio * (rmax - rmin + 1), min_side)
    width = max(expansion_ratio * (cmax - cmin + 1), min_side)
    rc, cc = 0.5 * (rmin + rmax), 0.5 * (cmin + cmax)
    return (
        max(0, round(rc - 0.5 * height)),
        min(image_hw[0] - 1, round(rc + 0.5 * height)),
        max(0, round(cc - 0.5 * width)),
        min(image_hw[1] - 1, round(cc + 0.5 * width)),
    )


def grow_window(roi: Roi, factor: float, image_hw: tuple[int, int]) -> Roi:
    """``roi`` enlarged by ``factor`` about its centre, shifted and cut to fit the image."""
    rmin, rmax, cmin, cmax = roi
    rows = _span(0.5 * (rmin + rmax), round(factor * (rmax - rmin + 1)), image_hw[0])
    cols = _span(0.5 * (cmin + cmax), round(factor * (cmax - cmin + 1)), image_hw[1])
    return (*rows, *cols)


def touches_inner_border(local: LocalProbs, thresh: float, margin: int = 1) -> bool:
    """Whether the mask ``probs > thresh`` reaches within ``margin`` pixels of a side of the
    window that is not also the image's edge (the object may continue beyond it)."""
    rmin, rmax, cmin, cmax = local.roi
    h, w = local.shape
    mask = local.probs > thresh
    sides = (
        (rmin > 0, mask[:margin]),
        (rmax < h - 1, mask[-margin:]),
        (cmin > 0, mask[:, :margin]),
        (cmax < w - 1, mask[:, -margin:]),
    )
    return any(inner and strip.any() for inner, strip in sides)


class WindowPredictor:
    """Turns clicks on one image into probabilities, looking at one window of it per pass.

    ``model``: an ``RITMNet`` (eval mode), an inference copy of it or anything called like it
    with a ``variant``, run as given (:func:`napari_ritm.inference.modes.make_predictor` gives
    it the folded copy). Window rule: see the module docstring. ``flip``: average with the
    horizontal mirror (twice the work). ``precision``: ``"bfloat16"`` runs the network under
    bfloat16 autocast (faster on CPUs that compute it natively; the probabilities move by a
    few thousandths), ``"float32"`` as it is.

    - ``set_image(image)``: a :class:`PlaneReader`, or an (H, W) / (H, W, 3) uint8 or [0, 1]
      float array (numpy or lazy), wrapped in :class:`ArrayPlane`; nothing is read yet.
    - ``predict(clicks, prev_mask=None)``: (H, W) float32 probabilities for all clicks so far.
      ``predict_local`` returns the same as :class:`LocalProbs` without building the full map.
      ``prev_mask`` ((H, W) in [0, 1] or LocalProbs): an existing mask to refine, used while
      the object has no prediction of its own.
    - ``get_state`` / ``set_state`` (undo), ``reset`` (new object), ``mask`` (binarise).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        net_size: int = 256,
        first_window: int = 128,
        max_window: int = 1024,
        growth: float = 2.0,
        expansion_ratio: float = 1.4,
        min_crop_size: int = 128,
        recompute_thresh_iou: float = 0.5,
        flip: bool = False,
        prob_thresh: float = 0.49,
        precision: str = "float32",
    ) -> None:
        if not 1 < growth:
            raise ValueError(f"growth must be > 1, got {growth}")
        if not 16 <= first_window <= max_window:
            raise ValueError("need 16 <= first_window <= max_window")
        self.model = model
        self.net_size = int(net_size)
        self.first_window = int(first_window)
        self.max_window = int(max_window)
        self.growth = float(growth)
        self.expansion_ratio = float(expansion_ratio)
        self.min_crop_size = int(min_crop_size)
        self.recompute_thresh_iou = float(recompute_thresh_iou)
        self.flip = bool(flip)
        self.prob_thresh = float(prob_thresh)
        if precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be 'float32' or 'bfloat16', got {precision!r}")
        self.precision = precision
        self._with_prev_mask = bool(model.variant.with_prev_mask)
        device = getattr(model, "device", None)
        self._device = device if device is not None else next(model.parameters()).device
        self._plane: PlaneReader | None = None
        self.passes = 0  # network passes of the last prediction (1 + growth steps)
        self.reset()

    @property
    def fused(self) -> bool:
        """Whether the model is a folded channels_last inference copy."""
        return bool(getattr(self.model, "folded", False) and self.model.channels_last)

    # -- image and state -------------------------------------------------------------------

    def set_image(self, image) -> None:
        """Use ``image`` (PlaneReader or array) from now on, and start a new object."""
        self._plane = image if hasattr(image, "read") else ArrayPlane(image)
        self.reset()

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return None if self._plane is None else tuple(self._plane.shape)

    @property
    def clicks(self) -> tuple[Click, ...]:
        return self._clicks

    @property
    def roi(self) -> Roi | None:
        """The window of the last prediction (rmin, rmax, cmin, cmax), inclusive."""
        return self._roi

    def get_state(self) -> WindowState:
        return WindowState(self._clicks, self._probs, self._roi)

    def set_state(self, state: WindowState) -> None:
        self._clicks, self._probs, self._roi = state.clicks, state.probs, state.roi

    def reset(self) -> None:
        self._clicks: tuple[Click, ...] = ()
        self._probs: LocalProbs | None = None
        self._roi: Roi | None = None

    def mask(self, probs: np.ndarray) -> np.ndarray:
        return probs > self.prob_thresh

    # -- prediction ------------------------------------------------------------------------

    def predict(self, clicks: Sequence[Click], prev_mask=None) -> np.ndarray:
        """(H, W) float32 probabilities for all ``clicks`` of the object so far."""
        return self.predict_local(clicks, prev_mask).full()

    @torch.inference_mode()
    def predict_local(self, clicks: Sequence[Click], prev_mask=None) -> LocalProbs:
        """Like :meth:`predict`, as probabilities inside the last window only."""
        if self._plane is None:
            raise RuntimeError("call set_image() before predict()")
        clicks = tuple(clicks)
        if not clicks:
            raise ValueError("predict() needs at least one click")
        hw = tuple(self._plane.shape)
        for c in clicks:
            if not (0 <= c.y < hw[0] and 0 <= c.x < hw[1]):
                raise ValueError(f"click at (y={c.y}, x={c.x}) lies outside the "
                                 f"{hw[0]}x{hw[1]} image")
        prior = self._probs
        if prior is None and prev_mask is not None:
            prior = prev_mask if isinstance(prev_mask, LocalProbs) else _as_local(prev_mask, hw)
        roi = self._choose_roi(prior, clicks, hw)
        self.passes = 0
        while True:
            local = self._run(roi, clicks, prior)
            self.passes += 1
            side = max(roi[1] - roi[0] + 1, roi[3] - roi[2] + 1)
            if side >= self.max_window or not touches_inner_border(local, self.prob_thresh):
                break
            bigger = grow_window(roi, min(self.growth, self.max_window / side), hw)
            if bigger == roi:
                break
            roi = bigger
        self._clicks, self._probs, self._roi = clicks, local, roi
        return local

    def _choose_roi(self, prior: LocalProbs | None, clicks: tuple[Click, ...], hw) -> Roi:
        box = prior.bbox(self.prob_thresh) if prior is not None else None
        if box is None:
            last = next((c for c in reversed(clicks) if c.positive), clicks[-1])
            return square_window(last.y, last.x, self.first_window, hw)
        candidate = zoom_roi(box, clicks, self.expansion_ratio, self.min_crop_size, hw)
        if (
            self._roi is not None
            and _positive_clicks_inside(self._roi, clicks)
            and bbox_iou(candidate, self._roi) >= self.recompute_thresh_iou
        ):
            return self._roi
        return candidate

    def _run(self, roi: Roi, clicks: tuple[Click, ...], prior: LocalProbs | None) -> LocalProbs:
        """One network pass on window ``roi``; returns its probabilities."""
        rmin, rmax, cmin, cmax = roi
        h, w = rmax - rmin + 1, cmax - cmin + 1
        scale = self.net_size / max(h, w, self.min_crop_size)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        pixels = torch.from_numpy(np.ascontiguousarray(self._plane.read(roi)))
        x = resize(pixels.permute(2, 0, 1)[None].to(self._device), size)
        mask = None
        if self._with_prev_mask:
            prev = np.zeros((h, w), np.float32) if prior is None else prior.crop(roi)
            mask = resize(torch.from_numpy(prev).to(self._device)[None, None], size)
        coords = map_coords(
            np.array([(c.y, c.x) for c in clicks], dtype=np.float64).reshape(-1, 2), roi, size
        )
        if self.flip:
            coords = flip_coords(coords, size[1])
            x, mask = flip_batch(x), flip_batch(mask) if mask is not None else None
        else:
            coords = coords[None]
        points = torch.from_numpy(encode_points(coords, [c.positive for c in clicks]))
        with torch.autocast(torch.device(self._device).type, dtype=torch.bfloat16,
                            enabled=self.precision == "bfloat16"):
            logits = self.model(x.contiguous(), points.to(self._device), mask)["instances"]
        logits = logits.float()
        if logits.shape[2:] != x.shape[2:]:
            logits = resize(logits, size)
        if self.flip:
            logits = merge_flipped(logits)
        probs = resize(torch.sigmoid(logits), (h, w))
        return LocalProbs(roi, probs[0, 0].float().cpu().numpy(), tuple(self._plane.shape))


def _as_local(prev_mask: np.ndarray, hw: tuple[int, int]) -> LocalProbs | None:
    """A full (H, W) mask as LocalProbs around its non-zero pixels (None when it is empty)."""
    prev_mask = np.asarray(prev_mask, dtype=np.float32)
    if prev_mask.shape != hw:
        raise ValueError(f"prev_mask has shape {prev_mask.shape}, the image is {hw}")
    rows, cols = np.flatnonzero(prev_mask.any(axis=1)), np.flatnonzero(prev_mask.any(axis=0))
    if rows.size == 0:
        return None
    roi = (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]))
    return LocalProbs(roi, prev_mask[roi[0] : roi[1] + 1, roi[2] : roi[3] + 1].copy(), hw)
