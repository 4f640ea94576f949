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

from napari_ritm.inference.clicks import Click, encode_points
from napari_ritm.inference.transforms import (
    LimitLongestSide,
    Roi,
    ZoomIn,
    crop_resize,
    flip_batch,
    flip_coords,
    map_coords,
    merge_flipped,
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


class Predictor:
    """Turns clicks on one image into a probability map, reproducing RITM's NoBRS predictor.

    ``model``: an ``RITMNet`` (eval mode), an inference copy of it
    (:func:`napari_ritm.model.fuse.optimize`), or anything called like it with a ``variant``
    (e.g. :class:`~napari_ritm.model.onnx_backend.OnnxRITM`), run as given; it gets the previous
    probabilities as ``prev_mask`` when ``model.variant.with_prev_mask``. Defaults are the
    official evaluation settings; the official demo uses ``target_size=(400, 400),
    skip_clicks=-1, max_size=800``. :func:`napari_ritm.inference.modes.make_predictor` builds
    the exact / fast modes with their inference copies.

    - ``set_image(image)``: (H, W) or (H, W, 3) uint8 (divided by 255 in float32) or float in
      [0, 1] (use :func:`napari_ritm.inference.normalize.normalize_image` for anything else).
      A float32 (H, W, 3) image is used without a copy: do not modify it while it is set.
    - ``predict(clicks)``: float32 (H, W) probabilities in [0, 1] (not binarised; ``mask`` applies
      ``prob_thresh``). Each call is one step: pass all clicks of the object so far, oldest first.
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
        prob_thresh: float = 0.49,
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
    def set_image(self, image: np.ndarray) -> None:
        """Convert ``image`` to the network's float input once, and start a new object."""
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise ValueError(
                f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}; "
                "use normalize_image() for other layouts"
            )
        if min(image.shape[:2]) < 1:
            raise ValueError(f"the image is empty (shape {image.shape})")
        if image.dtype == np.uint8:
            image = image.astype(np.float32) / np.float32(255)
        elif image.dtype.kind == "f":
            image = image.astype(np.float32, copy=False)
            if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
                raise ValueError(
                    "a float image must be finite and in [0, 1]; use normalize_image() first"
                )
        else:
            raise ValueError(
                f"expected a uint8 or float image, got {image.dtype}; use normalize_image() first"
            )
        h, w = image.shape[:2]
        rgb = torch.from_numpy(image).to(self._device)
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

    def mask(self, probs: np.ndarray) -> np.ndarray:
        """Binary mask ``probs > prob_thresh`` (bool)."""
        return probs > self.prob_thresh

    # -- prediction ------------------------------------------------------------------------

    @torch.inference_mode()
    def predict(
        self,
        clicks: Sequence[Click],
        prev_mask: np.ndarray | None = None,
        *,
        index_offset: int = 0,
    ) -> np.ndarray:
        """Probabilities (H, W) float32 for all ``clicks`` of the object so far (oldest first).

        ``prev_mask``: (H, W) in [0, 1] fed as the previous-mask channel instead of the previous
        prediction, e.g. an existing label to refine. The official demo passes such an initial
        mask on *every* click with ``index_offset=1`` and predicts the first click twice; do the
        same to reproduce it. The ZoomIn ROI always follows the previous prediction.
        """
        if self._image is None:
            raise RuntimeError("call set_image() before predict()")
        clicks = tuple(clicks)
        h, w = self._image.shape[2:]
        for click in clicks:
            if not (0 <= click.y < h and 0 <= click.x < w):
                raise ValueError(
                    f"click at (y={click.y}, x={click.x}) lies outside the {h}x{w} image"
                )
        if prev_mask is not None:
            prev_mask = np.asarray(prev_mask, dtype=np.float32)
            if prev_mask.shape != (h, w):
                raise ValueError(f"prev_mask has shape {prev_mask.shape}, the image is {(h, w)}")

        probs = self._run(clicks, prev_mask if prev_mask is not None else self._prev_probs,
                          self._prev_probs, index_offset)
        if self.zoom is not None and self.zoom.wants_second_pass(probs):
            # Official rule for skip_clicks == 0: predict again, now zoomed in on the small object
            # (the previous-mask channel is the previous step's prediction, as in the reference).
            probs = self._run(clicks, self._prev_probs, probs, index_offset)
        self._clicks, self._prev_probs = clicks, probs
        return probs.copy()

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

        if self.flip:
            coords = flip_coords(coords, x.shape[3])
            x, mask = flip_batch(x), flip_batch(mask) if mask is not None else None
        else:
            coords = coords[None]
        points = encode_points(coords, [c.positive for c in clicks], index_offset=index_offset)
        points = torch.from_numpy(points).to(self._device)
        # (contiguous: the un-zoomed first click would otherwise pass the HWC view of the image)
        logits = self.model(x.contiguous(), points, mask)["instances"]
        if logits.shape[2:] != x.shape[2:]:
            logits = resize(logits, (x.shape[2], x.shape[3]))
        if self.flip:
            logits = merge_flipped(logits)

        probs = torch.sigmoid(logits)
        if limited is not None:
            probs = resize(probs, zoomed_hw)
        if roi is not None:
            probs = paste(probs, roi, image_hw)
        return probs[0, 0].cpu().numpy()
