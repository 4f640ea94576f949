"""Classic click-seeded segmentation (no deep learning), driven like the RITM predictor.

What a user would do without a trained model, so that a model's NoC means something next to it:

- ``baseline:random_walker``: scikit-image's random walker (Grady 2006) on the RGB image
  downscaled to a long side of 256 px (for speed); the returned probability is the walker's
  probability of the object label, scaled back bilinearly.
- ``baseline:watershed``: marker-controlled watershed on the colour gradient (Sobel magnitude,
  maximum over channels, after a Gaussian blur with sigma 1); returns 0/1.

Seeds: each positive click is a disk of ``seed_radius`` pixels labelled object, each negative click
a disk labelled background (a positive disk wins where they overlap). While there is no negative
click, the image border is the background seed (both methods need a second label); the first
negative click replaces it, so an object touching the border can still be segmented fully.

A GrabCut-style graph cut is not offered: OpenCV (which has ``grabCut``) is a heavy dependency
that the project otherwise avoids, and PyMaxflow provides only the min-cut solver, so the GrabCut
colour models and iterations would have to be hand-written.
"""
from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from skimage.draw import disk
from skimage.filters import gaussian, sobel
from skimage.segmentation import random_walker, watershed
from skimage.transform import resize

from napari_ritm.inference.clicks import Click

OBJECT, BACKGROUND = 1, 2


def click_markers(shape: tuple[int, int], clicks: Sequence[Click], radius: float) -> np.ndarray:
    """Seed labels (H, W) int32: 0 unknown, 1 object, 2 background (see the module docstring)."""
    markers = np.zeros(shape, dtype=np.int32)
    negatives = [c for c in clicks if not c.positive]
    if not negatives:
        markers[[0, -1], :] = BACKGROUND
        markers[:, [0, -1]] = BACKGROUND
    for click in negatives:
        markers[disk((click.y, click.x), radius, shape=shape)] = BACKGROUND
    for click in clicks:
        if click.positive:
            markers[disk((click.y, click.x), radius, shape=shape)] = OBJECT
    return markers


class _SeededBaseline(ABC):
    """Common part: keeps the image (downscaled to ``max_side`` when given, the result is scaled
    back bilinearly); ``predict`` returns zeros while there is no positive click."""

    def __init__(self, seed_radius: float, max_side: int | None) -> None:
        self.seed_radius = seed_radius
        self.max_side = max_side
        self.shape = (0, 0)
        self.work = np.zeros((0, 0, 3), dtype=np.float32)

    def set_image(self, image: np.ndarray) -> None:
        """``image``: (H, W, 3) float in [0, 1] or uint8 (divided by 255)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got {image.shape}")
        image = (image / 255.0 if image.dtype == np.uint8 else image).astype(np.float32)
        self.shape = image.shape[:2]
        scale = 1.0 if self.max_side is None else min(1.0, self.max_side / max(self.shape))
        if scale < 1.0:
            small = tuple(max(1, round(n * scale)) for n in self.shape)
            image = resize(image, small, order=1, anti_aliasing=True).astype(np.float32)
        self.work = image
        self._prepare()

    @abstractmethod
    def _prepare(self) -> None:
        """Per-image precomputation on ``self.work`` (h, w, 3)."""

    def reset(self) -> None:
        """Nothing to forget: the baselines are stateless between clicks."""

    def predict(self, clicks: Sequence[Click]) -> np.ndarray:
        """(H, W) float32 object probability in [0, 1] for all ``clicks`` so far."""
        if not any(c.positive for c in clicks):
            return np.zeros(self.shape, dtype=np.float32)
        work_shape = self.work.shape[:2]
        if work_shape == self.shape:
            return self._segment(click_markers(self.shape, clicks, self.seed_radius))
        sy, sx = (w / n for w, n in zip(work_shape, self.shape))
        scaled = [Click((c.y + 0.5) * sy - 0.5, (c.x + 0.5) * sx - 0.5, c.positive) for c in clicks]
        radius = max(1.0, self.seed_radius * min(sy, sx))
        probs = self._segment(click_markers(work_shape, scaled, radius))
        return resize(probs, self.shape, order=1).astype(np.float32)

    @abstractmethod
    def _segment(self, markers: np.ndarray) -> np.ndarray:
        """(h, w) float32 object probability from seed labels (0 unknown, 1 object, 2 bg)."""


class RandomWalkerBaseline(_SeededBaseline):
    """Random walker seeded by the clicks.

    In: (H, W, 3) image in [0, 1] and clicks; out: (H, W) float32 probability of the object.
    ``beta``: edge sensitivity (scikit-image's default 130; scikit-image scales it by the image's
    std). ``max_side``: the walker runs on the image downscaled to this long side (256 by default:
    the sparse solve is the whole cost, ~0.2-0.3 s per click at 256 px with the direct solver,
    several seconds at 512 px); ``None`` solves at full resolution. A gray image (three equal
    channels) is solved as one channel. The direct sparse solver (scikit-image's ``bf`` mode) is
    used: at this size it beats conjugate gradients (which converge slowly with few seeds).
    """

    def __init__(
        self, seed_radius: float = 3.0, beta: float = 130.0, max_side: int | None = 256
    ) -> None:
        super().__init__(seed_radius, max_side)
        self.beta = beta

    def _prepare(self) -> None:
        work = self.work
        gray = np.array_equal(work[..., 0], work[..., 1]) and np.array_equal(
            work[..., 0], work[..., 2]
        )
        self.data = work[..., 0] if gray else work

    def _segment(self, markers: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # probability-range tolerance notes
            probs = random_walker(
                self.data, markers, beta=self.beta, mode="bf", return_full_prob=True,
                channel_axis=-1 if self.data.ndim == 3 else None,
            )
        return np.clip(probs[OBJECT - 1], 0.0, 1.0).astype(np.float32)


class WatershedBaseline(_SeededBaseline):
    """Watershed on the colour gradient, flooded from the click seeds (full resolution).

    In: (H, W, 3) image in [0, 1] and clicks; out: (H, W) float32 mask, 1.0 on the object.
    """

    def __init__(self, seed_radius: float = 3.0) -> None:
        super().__init__(seed_radius, max_side=None)

    def _prepare(self) -> None:
        smooth = gaussian(self.work, sigma=1.0, channel_axis=-1)
        self.gradient = np.max([sobel(smooth[..., c]) for c in range(3)], axis=0)

    def _segment(self, markers: np.ndarray) -> np.ndarray:
        return (watershed(self.gradient, markers) == OBJECT).astype(np.float32)


BASELINES = {"random_walker": RandomWalkerBaseline, "watershed": WatershedBaseline}
