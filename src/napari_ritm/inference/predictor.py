"""The click-to-mask predictor: RITM's NoBRS predictor, one network call per click.

The whole per-click path is in :meth:`Predictor._run`: ZoomIn crop of the image and of the
previous mask, LimitLongestSide, horizontal flip as a batch of 2, network, flip averaging on
logits, sigmoid, and the inverse resizes back to the image. Per image, the RGB input is prepared
once (:meth:`Predictor.set_image`, no copy of a float32 image); per click only the crop is resized.
Speed modes (network optimisation, ZoomIn size, flip) are in :mod:`napari_ritm.inference.modes`.
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
    View,
    as_local,
    network_pass,
)
from napari_ritm.inference.clicks import DEFAULT_THRESHOLD, Click
from napari_ritm.inference.transforms import (
    LimitLongestSide,
    Roi,
    ZoomIn,
    crop_resize,
    map_coords,
    paste,
    resize,
)

__all__ = ["Predictor", "PredictorState"]


@dataclass(frozen=True)
class PredictorState:
    """A snapshot for undo: the clicks of the last prediction, its probabilities, the ZoomIn ROI.

    The arrays are shared, not copied: the predictor never modifies them in place.
    """

    clicks: tuple[Click, ...]
    prev_probs: np.ndarray | None
    roi: Roi | None
    roi_changed: bool


class Predictor(ClickPredictor):
    """Turns clicks on one image into a probability map, reproducing RITM's NoBRS predictor.

    ``model``: an ``RITMNet`` (eval mode), an inference copy of it
    (:func:`napari_ritm.model.fuse.optimize`), or anything called like it with a ``variant``
    (e.g. :class:`~napari_ritm.model.onnx_backend.OnnxRITM`), run as given; it gets the previous
    probabilities as ``prev_mask`` when ``model.variant.with_prev_mask``. Defaults are the
    official evaluation settings; the official demo uses ``target_size=(400, 400),
    skip_clicks=-1, max_size=800``. :func:`napari_ritm.inference.modes.make_predictor` builds
    the exact / fast modes with their inference copies.

    - ``set_image(image)``: a :class:`~napari_ritm.inference.base.PlaneReader` (read whole),
      or (H, W) / (H, W, 3) uint8 (divided by 255 in float32) or float in [0, 1] (use
      :func:`napari_ritm.inference.normalize.normalize_image` for anything else). A float32
      (H, W, 3) image is used without a copy: do not modify it while it is set.
    - ``predict(clicks)``: float32 (H, W) probabilities in [0, 1] (not binarised; ``mask`` applies
      ``prob_thresh``, which ZoomIn also uses: the paper's 0.49, whatever the user's threshold).
      Each call is one step: pass all clicks of the object so far, oldest first;
      ``predict_local`` returns them as LocalProbs over the whole image.
    - ``get_state`` / ``set_state``: undo; ``reset``: a new object on the same image.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        zoom_in: bool = True,
        target_size: int | tuple[int, int] = 400,
        expansion_ratio: float = 1.4,
        min_crop_size: int = 200,
        skip_clicks: int = 1,
        flip: bool = True,
        max_size: int | None = None,
        prob_thresh: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.model = model
        self.flip = flip
        self.prob_thresh = prob_thresh
        self.zoom = (
            ZoomIn(
                target_size=tuple(target_size) if not isinstance(target_size, int) else target_size,
                skip_clicks=skip_clicks,
                expansion_ratio=expansion_ratio,
                min_crop_size=min_crop_size,
            )
            if zoom_in
            else None
        )
        self.limit = LimitLongestSide(max_size) if max_size is not None else None
        self._with_prev_mask = bool(model.variant.with_prev_mask)
        device = getattr(model, "device", None)
        self._device = device if device is not None else next(model.parameters()).device
        self._image: torch.Tensor | None = None  # (1, 3, H, W) float32 RGB in [0, 1]
        self._clicks: tuple[Click, ...] = ()
        self._prev_probs: np.ndarray | None = None

    @property
    def fused(self) -> bool:
        """Whether the model is a folded channels_last inference copy."""
        return bool(getattr(self.model, "folded", False) and self.model.channels_last)

    @property
    def exact_probe_change(self) -> float | None:
        """For an exact-mode copy, how far folding moved the probe (optimize_exact)."""
        return getattr(self.model, "probe_change", None)

    # -- image and state -------------------------------------------------------------------

    @torch.inference_mode()
    def set_image(self, image) -> None:
        """Convert ``image`` (array or PlaneReader) to the network's float input once, and start
        a new object."""
        if hasattr(image, "read"):  # a PlaneReader: the whole plane
            h, w = image.shape
            pixels = image.read((0, h - 1, 0, w - 1))
        else:
            pixels = ArrayPlane(image).pixels()
        h, w = pixels.shape[:2]
        rgb = torch.from_numpy(pixels).to(self._device)
        # A (1, 3, H, W) view of the (H, W, 3) array (or of the gray plane, three times): no copy.
        self._image = rgb.permute(2, 0, 1)[None] if rgb.ndim == 3 else rgb.expand(1, 3, h, w)
        self.reset()

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) of the current image, or None before ``set_image``."""
        return None if self._image is None else tuple(self._image.shape[2:])

    @property
    def clicks(self) -> tuple[Click, ...]:
        """The clicks of the last prediction."""
        return self._clicks

    @property
    def roi(self) -> Roi | None:
        """The current ZoomIn ROI (rmin, rmax, cmin, cmax), inclusive; None when there is none."""
        return None if self.zoom is None else self.zoom.roi

    @property
    def roi_changed(self) -> bool:
        """Whether the last prediction (re)assigned the ZoomIn ROI."""
        return self.zoom is not None and self.zoom.roi_changed

    def get_state(self) -> PredictorState:
        """Snapshot of clicks, previous probabilities and ZoomIn ROI (cheap: no copies)."""
        roi, roi_changed = self.zoom.get_state() if self.zoom is not None else (None, False)
        return PredictorState(self._clicks, self._prev_probs, roi, roi_changed)

    def set_state(self, state: PredictorState) -> None:
        """Go back to a snapshot taken with ``get_state`` on the same image."""
        self._clicks, self._prev_probs = state.clicks, state.prev_probs
        if self.zoom is not None:
            self.zoom.set_state((state.roi, state.roi_changed))

    def reset(self) -> None:
        """Forget clicks, previous prediction and ROI (a new object on the same image)."""
        self._clicks, self._prev_probs = (), None
        if self.zoom is not None:
            self.zoom.reset()

    def follow_threshold(self, threshold: float) -> None:
        """Nothing: the paper's ZoomIn keeps its 0.49, so that the exact mode reproduces the
        published predictor whatever threshold the user shows the mask at."""

    # -- prediction ------------------------------------------------------------------------

    def predict_local(self, clicks: Sequence[Click], prev_mask=None, *,
                      index_offset: int = 0) -> LocalProbs:
        """:meth:`predict` as LocalProbs over the whole image."""
        probs = self.predict(clicks, prev_mask, index_offset=index_offset)
        h, w = probs.shape
        return LocalProbs((0, h - 1, 0, w - 1), probs, (h, w))

    @torch.inference_mode()
    def predict(
        self,
        clicks: Sequence[Click],
        prev_mask=None,
        *,
        index_offset: int = 0,
    ) -> np.ndarray:
        """Probabilities (H, W) float32 for all ``clicks`` of the object so far (oldest first).

        ``prev_mask``: (H, W) in [0, 1] (or LocalProbs) fed as the previous-mask channel instead
        of the previous prediction, e.g. an existing label to refine. The official demo passes
        such an initial mask on *every* click with ``index_offset=1`` and predicts the first
        click twice; do the same to reproduce it. The ZoomIn ROI always follows the previous
        prediction.
        """
        if self._image is None:
            raise RuntimeError("call set_image() before predict()")
        clicks = tuple(clicks)
        h, w = self._image.shape[2:]
        self._check_clicks(clicks)
        if prev_mask is not None:
            local = as_local(prev_mask, (h, w))
            prev_mask = local.full() if local is not None else np.zeros((h, w), np.float32)

        probs = self._run(clicks, prev_mask if prev_mask is not None else self._prev_probs,
                          self._prev_probs, index_offset)
        if self.zoom is not None and self.zoom.wants_second_pass(probs):
            # Official rule for skip_clicks == 0: predict again, now zoomed in on the small object
            # (the previous-mask channel is the previous step's prediction, as in the reference).
            probs = self._run(clicks, self._prev_probs, probs, index_offset)
        self._clicks, self._prev_probs = clicks, probs
        return probs.copy()

    @torch.inference_mode()
    def predict_views(self, views: Sequence[View], roi: Roi) -> list[LocalProbs]:
        """For each view (clicks, previous mask) the probabilities in window ``roi``, shown to the
        network as ZoomIn shows it, in one batch; the object's state is left as it is."""
        if self._image is None:
            raise RuntimeError("call set_image() before predict_views()")
        image_hw = (self._image.shape[2], self._image.shape[3])
        rmin, rmax, cmin, cmax = roi
        size = self.zoom.crop_size(roi) if self.zoom is not None else (rmax - rmin + 1,
                                                                      cmax - cmin + 1)
        x = crop_resize(self._image, roi, size)
        batch = []
        for clicks, prev in views:
            self._check_clicks(clicks)
            mask = None
            if self._with_prev_mask:
                local = as_local(prev, image_hw)
                full = np.zeros(image_hw, np.float32) if local is None else local.full()
                mask = crop_resize(torch.from_numpy(full).to(self._device)[None, None], roi,
                                   size)
            coords = np.array([(c.y, c.x) for c in clicks], dtype=np.float64).reshape(-1, 2)
            batch.append((map_coords(coords, roi, size), [c.positive for c in clicks], mask))
        probs = network_pass(self.model, x, batch, flip=self.flip)
        probs = resize(probs, (rmax - rmin + 1, cmax - cmin + 1)).cpu().numpy()
        return [LocalProbs(roi, p[0], image_hw) for p in probs]

    def _run(
        self,
        clicks: tuple[Click, ...],
        prev_mask: np.ndarray | None,
        roi_probs: np.ndarray | None,
        index_offset: int,
    ) -> np.ndarray:
        """One network pass. ``prev_mask`` feeds the mask input (None: zeros); ``roi_probs`` is
        the map ZoomIn derives its ROI from. Returns (H, W) float32 probabilities."""
        x = self._image
        image_hw = (x.shape[2], x.shape[3])
        mask = None
        if self._with_prev_mask:
            mask = (torch.zeros((1, 1, *image_hw), device=self._device) if prev_mask is None
                    else torch.from_numpy(prev_mask).to(self._device)[None, None])
        coords = np.array([(c.y, c.x) for c in clicks], dtype=np.float64).reshape(-1, 2)

        roi = self.zoom.select_roi(roi_probs, clicks, image_hw) if self.zoom is not None else None
        if roi is not None:
            size = self.zoom.crop_size(roi)
            x, coords = crop_resize(x, roi, size), map_coords(coords, roi, size)
            mask = crop_resize(mask, roi, size) if mask is not None else None
        zoomed_hw = (x.shape[2], x.shape[3])
        limited = self.limit.size_for(*zoomed_hw) if self.limit is not None else None
        if limited is not None:
            full = (0, zoomed_hw[0] - 1, 0, zoomed_hw[1] - 1)
            x, coords = resize(x, limited), map_coords(coords, full, limited)
            mask = resize(mask, limited) if mask is not None else None
        # (network_pass makes the input contiguous: the un-zoomed first click would otherwise
        # pass the HWC view of the image)
        probs = network_pass(self.model, x, [(coords, [c.positive for c in clicks], mask)],
                             flip=self.flip, index_offset=index_offset)
        if limited is not None:
            probs = resize(probs, zoomed_hw)
        if roi is not None:
            probs = paste(probs, roi, image_hw)
        return probs[0, 0].cpu().numpy()
