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
:class:`~napari_ritm.inference.base.PlaneReader`, so a lazy (dask, zarr) plane is never loaded
whole; probabilities live in the window only (:class:`~napari_ritm.inference.base.LocalProbs`).
Window sizes and the growth rule were chosen on the shared val sets
(benchmarks/window_rule.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napari_ritm.inference.base import (
    ArrayPlane,
    ClickPredictor,
    LocalProbs,
    PlaneReader,
    View,
    as_local,
    network_pass,
)
from napari_ritm.inference.clicks import DEFAULT_THRESHOLD, Click
from napari_ritm.inference.local_change import keep_change_at
from napari_ritm.inference.second_look import component_at, looks_like_blob, surrounds
from napari_ritm.inference.transforms import (
    Roi,
    _positive_clicks_inside,
    bbox_iou,
    map_coords,
    resize,
)

__all__ = ["WindowPredictor", "WindowState", "grow_window", "square_window", "zoom_roi"]


@dataclass(frozen=True)
class WindowState:
    """A snapshot for undo: the clicks of the last prediction, its probabilities, the window,
    and whether the object started from a mask it was given."""

    clicks: tuple[Click, ...]
    probs: LocalProbs | None
    roi: Roi | None
    refining: bool


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


class WindowPredictor(ClickPredictor):
    """Turns clicks on one image into probabilities, looking at one window of it per pass.

    ``model``: an ``RITMNet`` (eval mode), an inference copy of it or anything called like it
    with a ``variant``, run as given (:func:`napari_ritm.inference.modes.make_predictor` gives
    it the folded copy). Window rule: see the module docstring. ``flip``: average with the
    horizontal mirror (twice the work); with ``flip_refine`` False only the passes of an
    object's first click are, not the refining ones. ``precision``: ``"bfloat16"`` runs the
    network under bfloat16 autocast (faster on CPUs that compute it natively), ``"float32"`` as
    it is.

    ``second_look``: when > 0, a first click whose mask (after no growth) is a small unsure
    blob with no image edge around it is predicted again in a window ``second_look`` times
    ``first_window``, kept when its object surrounds the first window
    (:mod:`napari_ritm.inference.second_look`); 0 turns this off.

    ``local_corrections``: on an object that started from a mask it was given (``prev_mask``
    at its first click: a label to refine), a click changes a region only where it was
    clicked, and the outline elsewhere by at most ``thin_change`` times the mask's radius
    (:mod:`napari_ritm.inference.local_change`). Objects started from clicks alone are
    predicted as the network sees them.

    ``prob_thresh``: where the mask is, for the window rule (the window grows while the mask
    reaches its border); the session sets it to the user's threshold, so that the window grows
    with the mask the user sees. The predictor contract (set_image, predict_local, predict,
    predict_views, get_state / set_state, reset) is :class:`~napari_ritm.inference.base.
    ClickPredictor`'s.
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
        flip_refine: bool = True,
        prob_thresh: float = DEFAULT_THRESHOLD,
        precision: str = "float32",
        second_look: int = 0,
        local_corrections: bool = False,
        thin_change: float = 0.15,
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
        self.flip_refine = bool(flip_refine)
        self.prob_thresh = float(prob_thresh)
        if precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be 'float32' or 'bfloat16', got {precision!r}")
        self.precision = precision
        self.second_look = int(second_look)
        self.local_corrections = bool(local_corrections)
        self.thin_change = float(thin_change)
        self._with_prev_mask = bool(model.variant.with_prev_mask)
        device = getattr(model, "device", None)
        self._device = device if device is not None else next(model.parameters()).device
        self._plane: PlaneReader | None = None  # the image, read one window at a time
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
        return WindowState(self._clicks, self._probs, self._roi, self._refining)

    def set_state(self, state: WindowState) -> None:
        self._clicks, self._probs, self._roi = state.clicks, state.probs, state.roi
        self._refining = state.refining

    def reset(self) -> None:
        self._clicks: tuple[Click, ...] = ()
        self._probs: LocalProbs | None = None
        self._refining = False
        self._roi: Roi | None = None

    # -- prediction ------------------------------------------------------------------------

    @torch.inference_mode()
    def predict_local(self, clicks: Sequence[Click], prev_mask=None) -> LocalProbs:
        """Like :meth:`predict`, as probabilities inside the last window only."""
        if self._plane is None:
            raise RuntimeError("call set_image() before predict()")
        clicks = tuple(clicks)
        if not clicks:
            raise ValueError("predict() needs at least one click")
        hw = tuple(self._plane.shape)
        self._check_clicks(clicks)
        prior = self._probs if self._probs is not None else as_local(prev_mask, hw)
        refining = self._refining if self._probs is not None else prior is not None
        self.passes = 0
        local, roi = self._grow(self._choose_roi(prior, clicks, hw), clicks, prior, hw)
        if (self.second_look and prior is None and self.passes == 1 and len(clicks) == 1
                and clicks[0].positive):
            local, roi = self._look_wider(local, roi, clicks[0], hw)
        if self.local_corrections and refining:
            local = keep_change_at(prior, local, clicks[-1], self.prob_thresh, self.thin_change)
        self._clicks, self._probs, self._roi, self._refining = clicks, local, roi, refining
        return local

    def _grow(self, roi: Roi, clicks: tuple[Click, ...], prior: LocalProbs | None, hw,
              first: LocalProbs | None = None) -> tuple[LocalProbs, Roi]:
        """Predict on ``roi`` (``first``: that pass, already run), growing the window while the
        mask reaches its border; (probabilities, last window)."""
        while True:
            local = first if first is not None else self._run_one(roi, clicks, prior)
            first = None
            self.passes += 1
            side = max(roi[1] - roi[0] + 1, roi[3] - roi[2] + 1)
            if side >= self.max_window or not touches_inner_border(local, self.prob_thresh):
                return local, roi
            bigger = grow_window(roi, min(self.growth, self.max_window / side), hw)
            if bigger == roi:
                return local, roi
            roi = bigger

    def _look_wider(self, local: LocalProbs, roi: Roi, click: Click,
                    hw) -> tuple[LocalProbs, Roi]:
        """The first click's mask is a small unsure blob with no image edge around it: look
        again in a window ``second_look`` times wider, and keep that view when its object
        surrounds the first window and the network is surer of it (module second_look)."""
        if not looks_like_blob(local, self._plane.read(roi), self.prob_thresh):
            return local, roi
        side = min(self.first_window * self.second_look, self.max_window)
        wide_roi = square_window(click.y, click.x, side, hw)
        wide = self._run_one(wide_roi, (click,), None)
        part = component_at(wide, click, self.prob_thresh)
        mine = local.probs[local.probs > self.prob_thresh].mean()
        if part is None or not surrounds(part, wide_roi, roi) or (
                wide.probs[part].mean() <= mine + 0.1):
            self.passes += 1
            return local, roi
        return self._grow(wide_roi, (click,), None, hw, first=wide)

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

    @torch.inference_mode()
    def predict_views(self, views: Sequence[View], roi: Roi) -> list[LocalProbs]:
        """For each view (clicks, previous mask: (H, W) array, LocalProbs or None) the
        probabilities in window ``roi``, all in one network batch (mirrored when ``flip``); the
        object's clicks, probabilities and window are left as they are."""
        if self._plane is None:
            raise RuntimeError("call set_image() before predict_views()")
        hw = tuple(self._plane.shape)
        views = [(tuple(clicks), as_local(prev, hw)) for clicks, prev in views]
        for clicks, _ in views:
            self._check_clicks(clicks)
        return self._run(roi, views, self.flip)

    def _run_one(self, roi: Roi, clicks: tuple[Click, ...],
                 prior: LocalProbs | None) -> LocalProbs:
        """One network pass on window ``roi`` for the object's clicks."""
        flip = self.flip and (prior is None or self.flip_refine)
        return self._run(roi, [(clicks, prior)], flip)[0]

    def _run(self, roi: Roi, views: list[tuple[tuple[Click, ...], LocalProbs | None]],
             flip: bool) -> list[LocalProbs]:
        """One network pass on window ``roi`` for every view; their probabilities."""
        rmin, rmax, cmin, cmax = roi
        h, w = rmax - rmin + 1, cmax - cmin + 1
        scale = self.net_size / max(h, w, self.min_crop_size)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        pixels = torch.from_numpy(np.ascontiguousarray(self._plane.read(roi)))
        x = resize(pixels.permute(2, 0, 1)[None].to(self._device), size)
        batch = []
        for clicks, prior in views:
            mask = None
            if self._with_prev_mask:
                prev = np.zeros((h, w), np.float32) if prior is None else prior.crop(roi)
                mask = resize(torch.from_numpy(prev).to(self._device)[None, None], size)
            coords = map_coords(np.array([(c.y, c.x) for c in clicks], dtype=np.float64)
                                .reshape(-1, 2), roi, size)
            batch.append((coords, [c.positive for c in clicks], mask))
        probs = network_pass(self.model, x, batch, flip=flip, precision=self.precision)
        probs = resize(probs, (h, w)).cpu().numpy()
        return [LocalProbs(roi, p[0], hw) for p in probs for hw in [tuple(self._plane.shape)]]
