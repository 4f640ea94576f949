"""A deterministic stand-in for the RITM predictor, for session and widget tests.

The "object" is the bright part (red channel > 0.5) of the image near the clicks: the previous
mask plus disks of ``radius`` around positive clicks, restricted to bright pixels, minus disks
around negative clicks. Probabilities: 0.9 inside a positive disk, 0.7 on the carried-over
previous mask, 0.1 elsewhere (so a threshold between 0.7 and 0.9 changes the preview).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_ritm.inference.base import ClickPredictor, LocalProbs, as_local


class FullMapFake(ClickPredictor):
    """The predictor contract for fakes that compute a whole (H, W) map in ``predict(clicks,
    prev_mask)`` from a whole (H, W, 3) float32 image given to ``set_image``."""

    model = None
    flip = False
    prob_thresh = 0.49
    shape: tuple[int, int] | None = None

    def set_image(self, image) -> None:
        if hasattr(image, "read"):  # the session's plane reader: the whole plane
            image = image.read((0, image.shape[0] - 1, 0, image.shape[1] - 1))
        self.shape = tuple(np.asarray(image).shape[:2])
        self.take_image(np.asarray(image))
        self.reset()

    def take_image(self, image: np.ndarray) -> None:
        pass

    @property
    def image_shape(self):
        return self.shape

    def get_state(self):
        return None

    def set_state(self, state) -> None:
        pass

    def reset(self) -> None:
        pass

    def predict_local(self, clicks, prev_mask=None) -> LocalProbs:
        local = as_local(prev_mask, self.shape)
        probs = self.predict(clicks, None if local is None else local.full())
        h, w = self.shape
        return LocalProbs((0, h - 1, 0, w - 1), probs, (h, w))

    def predict_views(self, views, roi):
        return [LocalProbs(roi, self.predict_local(clicks, prev).crop(roi), self.shape)
                for clicks, prev in views]


class DiskPredictor(FullMapFake):
    """Implements the session's predictor protocol: set_image / predict / reset / get/set_state."""

    def __init__(self, radius: float = 4.0, fail: bool = False) -> None:
        self.radius = radius
        self.fail = fail
        self.predict_calls = 0
        self.images_set = 0
        self._bright: np.ndarray | None = None
        self._prev: np.ndarray | None = None

    def take_image(self, image: np.ndarray) -> None:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.float32
        self._bright = image[..., 0] > 0.5
        self.images_set += 1

    def reset(self) -> None:
        self._prev = None

    def get_state(self) -> np.ndarray | None:
        return self._prev

    def set_state(self, state: np.ndarray | None) -> None:
        self._prev = state

    def predict(self, clicks: Sequence, prev_mask: np.ndarray | None = None) -> np.ndarray:
        if self.fail:
            raise RuntimeError("model exploded")
        assert self._bright is not None, "set_image first"
        self.predict_calls += 1
        h, w = self._bright.shape
        rows, cols = np.mgrid[:h, :w]
        base = prev_mask if prev_mask is not None else self._prev
        probs = np.full((h, w), 0.1, dtype=np.float32)
        if base is not None:
            probs[(base > 0.5) & self._bright] = 0.7
        for click in clicks:
            disk = (rows - click.y) ** 2 + (cols - click.x) ** 2 <= self.radius**2
            if click.positive:
                probs[disk & self._bright] = 0.9
            else:
                probs[disk] = 0.1
        self._prev = probs
        return probs.copy()


class FloodNet:
    """A stand-in for ``RITMNet`` with the same call: the object is the connected bright region
    (red channel > 0.5) under the positive clicks, in whatever window the network is shown.

    ``net(image (B, 3, h, w), points (B, 2N, 3), prev_mask)`` -> {"instances": logits (B, 1, h, w)},
    +8 on the object, -8 elsewhere. Records the input sizes it was called with in ``calls``.
    """

    class _Variant:
        with_prev_mask = True

    variant = _Variant()
    device = "cpu"

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, image, points, prev_mask=None):
        import torch
        from scipy import ndimage

        self.calls.append(tuple(image.shape[2:]))
        bright = (image[:, 0] > 0.5).numpy()
        half = points.shape[1] // 2
        out = np.full((image.shape[0], 1, *image.shape[2:]), -8.0, dtype=np.float32)
        for b in range(image.shape[0]):
            regions, _ = ndimage.label(bright[b])
            for y, x, index in points[b, :half].tolist():
                if index < 0:
                    continue
                r = min(max(int(round(y)), 0), bright.shape[1] - 1)
                c = min(max(int(round(x)), 0), bright.shape[2] - 1)
                if regions[r, c]:
                    out[b, 0][regions == regions[r, c]] = 8.0
        return {"instances": torch.from_numpy(out)}


class RadialPredictor(FullMapFake):
    """A predictor whose probability falls off smoothly with the distance from the first
    positive click: ``sigmoid((radius - distance) / width)``, 0.5 at ``radius`` pixels. Labels
    drawn as disks of radius r around the click are matched best at the threshold
    ``sigmoid((radius - r) / width)``: above 0.5 for tighter outlines, below for looser ones.
    Counts ``set_image`` and ``predict`` calls."""

    def __init__(self, radius: float = 10.0, width: float = 2.0) -> None:
        self.radius, self.width = radius, width
        self.shape: tuple[int, int] | None = None
        self.images_set = 0
        self.predict_calls = 0

    def take_image(self, image: np.ndarray) -> None:
        self.images_set += 1

    def predict(self, clicks: Sequence, prev_mask: np.ndarray | None = None) -> np.ndarray:
        assert self.shape is not None, "set_image first"
        self.predict_calls += 1
        first = next(c for c in clicks if c.positive)
        from scipy.special import expit

        rows, cols = np.mgrid[: self.shape[0], : self.shape[1]]
        distance = np.hypot(rows - first.y, cols - first.x)
        return expit((self.radius - distance) / self.width).astype(np.float32)
