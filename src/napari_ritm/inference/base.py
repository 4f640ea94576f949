"""The predictor contract every mode implements, and the network pass they share.

:class:`ClickPredictor` is what the session, propagation, evaluation and the commands call:
``set_image`` (an image array or a :class:`PlaneReader` that reads one window at a time),
``predict_local`` (probabilities inside the window the predictor looked at, as
:class:`LocalProbs`), ``predict`` (the same as a full map), ``predict_views`` (several click
sets on one window in one network batch), ``get_state`` / ``set_state`` (undo) and ``reset``
(a new object). The window predictor (:mod:`napari_ritm.inference.window`) and the RITM paper's
predictor (:mod:`napari_ritm.inference.predictor`) are its two implementations.

:func:`network_pass` is the one place where clicks become the network's input and its output
becomes probabilities: mirror (flip) the input, encode the clicks, run the network (under
bfloat16 autocast when asked), average the mirrored logits, sigmoid. :class:`ArrayPlane` is
the one image check.
"""
from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from napari_ritm.inference.clicks import DEFAULT_THRESHOLD, Click, encode_points
from napari_ritm.inference.transforms import Roi, flip_batch, flip_coords, merge_flipped, resize

__all__ = ["ArrayPlane", "ClickPredictor", "LocalProbs", "PlaneReader",
           "View", "as_local", "network_pass"]

#: One request to :meth:`ClickPredictor.predict_views`: the clicks (oldest first, maybe none)
#: and the previous mask that goes with them (None: none).
View = tuple[Sequence[Click], "LocalProbs | np.ndarray | None"]


class PlaneReader(Protocol):
    """A 2D image read one window at a time: ``shape`` (H, W) and ``read(roi)``, which returns
    the pixels of ``roi`` (rmin, rmax, cmin, cmax; inclusive) as (h, w, 3) float32 in [0, 1]."""

    @property
    def shape(self) -> tuple[int, int]: ...

    def read(self, roi: Roi) -> np.ndarray: ...


class ArrayPlane:
    """A :class:`PlaneReader` over an in-memory or lazy array: (H, W) or (H, W, 3), uint8 (divided
    by 255, as the RITM reference does) or float already in [0, 1]. Only the pixels of each window
    are read and converted; a float32 (H, W, 3) array is used without a copy. Raises ValueError
    (a message for the user) for other shapes and dtypes, an empty image, or floats outside
    [0, 1] or not finite (when read)."""

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
        block = self.pixels(roi)
        if block.ndim == 2:
            block = np.repeat(block[:, :, None], 3, axis=2)
        return block

    def pixels(self, roi: Roi | None = None) -> np.ndarray:
        """The pixels of ``roi`` (None: all) as (h, w) or (h, w, 3) float32 in [0, 1]: a grey
        image stays one channel."""
        if roi is None:
            roi = (0, self.shape[0] - 1, 0, self.shape[1] - 1)
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
        """(H, W) float32: the window pasted into zeros (the window itself when it is all)."""
        if self.probs.shape == tuple(self.shape):
            return self.probs
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


def as_local(mask: LocalProbs | np.ndarray | None, hw: tuple[int, int]) -> LocalProbs | None:
    """A previous mask as LocalProbs: kept when it is one, a full (H, W) array cut to the box of
    its non-zero pixels, None when empty or None. Raises ValueError for another shape."""
    if mask is None or isinstance(mask, LocalProbs):
        return mask
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape != tuple(hw):
        raise ValueError(f"prev_mask has shape {mask.shape}, the image is {tuple(hw)}")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    roi = (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]))
    return LocalProbs(roi, mask[roi[0] : roi[1] + 1, roi[2] : roi[3] + 1].copy(), tuple(hw))


def network_pass(
    model: Any,
    image: torch.Tensor,
    views: Sequence[tuple[np.ndarray, Sequence[bool], torch.Tensor | None]],
    *,
    flip: bool,
    precision: str = "float32",
    index_offset: int = 0,
) -> torch.Tensor:
    """Probabilities (V, 1, h, w) float32 of ``views`` of one network input, in one call.

    ``image``: (1, 3, h, w) float32 in [0, 1]; each view: click coordinates (K, 2) float64 in
    input pixels, their signs (K booleans; K may be 0), and its previous mask (1, 1, h, w) or
    None (the network's zeros). ``flip``: also the mirrored input, its logits averaged in.
    ``precision``: ``"bfloat16"`` runs the network under bfloat16 autocast. One view is exactly
    the RITM reference's pass (mirror as a batch of two, logits averaged, then sigmoid)."""
    n = max([1] + [max(int(np.sum(p)), len(p) - int(np.sum(p))) for _, p, _ in views])
    points = []
    for coords, positive, _ in views:
        coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        coords = flip_coords(coords, image.shape[3]) if flip else coords[None]
        points.append(_pad_points(encode_points(coords, positive, index_offset=index_offset), n))
    x = flip_batch(image) if flip else image
    if len(views) > 1:
        x = x.repeat(len(views), 1, 1, 1)
    masks = [m for _, _, m in views]
    mask = None
    if any(m is not None for m in masks):  # a view without one gets the network's zeros
        given = next(m for m in masks if m is not None)
        masks = [torch.zeros_like(given) if m is None else m for m in masks]
        mask = torch.cat([flip_batch(m) if flip else m for m in masks])
    copies = 2 if flip else 1
    device = image.device
    batch = torch.from_numpy(np.concatenate(points)).to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        logits = model(x.contiguous(), batch, mask)["instances"]
    logits = logits.float()
    if logits.shape[2:] != x.shape[2:]:
        logits = resize(logits, (x.shape[2], x.shape[3]))
    if flip:
        logits = torch.cat([merge_flipped(logits[k : k + copies])
                            for k in range(0, len(logits), copies)])
    return torch.sigmoid(logits)


def _pad_points(points: np.ndarray, n: int) -> np.ndarray:
    """(B, 2k, 3) points -> (B, 2n, 3) (n >= k): each half padded with (-1, -1, -1) rows."""
    k = points.shape[1] // 2
    if k == n:
        return points
    out = np.full((points.shape[0], 2 * n, 3), -1.0, dtype=np.float32)
    out[:, :k] = points[:, :k]
    out[:, n : n + k] = points[:, k:]
    return out


class ClickPredictor(abc.ABC):
    """The contract of every predictor mode (see the module docstring).

    - ``set_image(image)``: a :class:`PlaneReader`, or an (H, W) / (H, W, 3) uint8 or [0, 1]
      float array (numpy or lazy; :class:`ArrayPlane` checks it); starts a new object.
    - ``predict_local(clicks, prev_mask=None)``: :class:`LocalProbs` for all clicks of the
      object so far (oldest first). ``prev_mask`` ((H, W) in [0, 1] or LocalProbs): an existing
      mask to refine, used while the object has no prediction of its own.
    - ``predict(clicks, prev_mask=None)``: the same as a full (H, W) float32 map.
    - ``predict_views(views, roi)``: for each view (clicks, previous mask) the probabilities in
      window ``roi``, in one network batch, without touching the object's state.
    - ``get_state`` / ``set_state`` (undo), ``reset`` (a new object on the same image),
      ``image_shape`` ((H, W) or None), ``mask(probs)`` (``probs > prob_thresh``),
      ``follow_threshold`` (the session passes on the user's threshold).
    """

    model: Any
    flip: bool
    prob_thresh: float = DEFAULT_THRESHOLD
    precision: str = "float32"

    @abc.abstractmethod
    def set_image(self, image: PlaneReader | np.ndarray) -> None: ...

    @abc.abstractmethod
    def predict_local(self, clicks: Sequence[Click], prev_mask=None) -> LocalProbs: ...

    @abc.abstractmethod
    def predict_views(self, views: Sequence[View], roi: Roi) -> list[LocalProbs]: ...

    @abc.abstractmethod
    def get_state(self) -> Any: ...

    @abc.abstractmethod
    def set_state(self, state: Any) -> None: ...

    @abc.abstractmethod
    def reset(self) -> None: ...

    @property
    @abc.abstractmethod
    def image_shape(self) -> tuple[int, int] | None: ...

    def predict(self, clicks: Sequence[Click], prev_mask=None) -> np.ndarray:
        """(H, W) float32 probabilities for all ``clicks`` of the object so far."""
        return self.predict_local(clicks, prev_mask).full()

    def mask(self, probs: np.ndarray) -> np.ndarray:
        """Binary mask ``probs > prob_thresh`` (bool)."""
        return probs > self.prob_thresh

    def follow_threshold(self, threshold: float) -> None:
        """The user's threshold changed: where the predictor sees the mask from now on (the
        window predictor grows its windows with it)."""
        self.prob_thresh = float(threshold)

    def _check_clicks(self, clicks: Sequence[Click]) -> None:
        h, w = self.image_shape
        for c in clicks:
            if not (0 <= c.y < h and 0 <= c.x < w):
                raise ValueError(f"click at (y={c.y}, x={c.x}) lies outside the {h}x{w} image")
