"""One plane of an image, and one predictor call on it (pure Python, no Qt).

:class:`ImageSource` reads and normalises a single (H, W) plane of an image of any
dimensionality (numpy, dask, zarr), so a lazy stack is never loaded whole. :class:`PredictJob`
is one predictor call that may run in a worker thread; the session builds it and applies its
:class:`JobResult`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from napari_ritm.inference.clicks import Click
from napari_ritm.inference.normalize import normalize_image

__all__ = ["ImageSource", "JobResult", "PredictJob", "PredictorLike"]


class PredictorLike(Protocol):
    """The predictor interface the session uses (``napari_ritm.inference.predictor.Predictor``)."""

    def set_image(self, image: np.ndarray) -> None: ...

    def predict(
        self, clicks: Sequence[Click], prev_mask: np.ndarray | None = None
    ) -> np.ndarray: ...

    def get_state(self) -> Any: ...

    def set_state(self, state: Any) -> None: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class ImageSource:
    """The image to segment, read one plane at a time.

    ``data``: array-like (numpy, dask, zarr) of shape (..., H, W), or (..., H, W, C) with
    ``rgb=True``. Only the plane in use is read (``data[key]``), never the whole stack.
    ``contrast_limits``: (lo, hi) mapped to [0, 1] (a napari layer's), None for
    :func:`normalize_image`'s defaults.
    """

    data: Any
    rgb: bool = False
    contrast_limits: tuple[float, float] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The spatial shape (..., H, W)."""
        shape = tuple(int(s) for s in self.data.shape)
        return shape[:-1] if self.rgb else shape

    def normalized(self, key: Sequence[int]) -> np.ndarray:
        """The plane at leading indices ``key`` as (H, W, 3) float32 in [0, 1]."""
        plane = np.asarray(self.data[tuple(int(k) for k in key)])
        limits = None if self.rgb else self.contrast_limits
        return normalize_image(plane, contrast_limits=limits)


@dataclass(frozen=True)
class JobResult:
    """What :meth:`PredictJob.run` returns: probabilities (H, W) float32, the predictor state
    after the call, and the normalised plane the predictor holds."""

    probs: np.ndarray
    state: Any
    plane: np.ndarray


@dataclass(frozen=True)
class PredictJob:
    """One predictor call for the newest click, built by :meth:`Session.pump`.

    ``run()`` touches only the predictor and the image (never the labels), so it may run in a
    worker thread; it sets the image when needed, restores the state after the previous click
    (``state`` None: a new object), and predicts with all ``clicks``.
    """

    predictor: PredictorLike
    source: ImageSource
    key: tuple[int, ...]
    plane: np.ndarray | None  # normalised plane if cached, else read in run()
    needs_image: bool
    state: Any
    clicks: tuple[Click, ...]
    prev_mask: np.ndarray | None
    generation: int

    def run(self) -> JobResult:
        plane = self.source.normalized(self.key) if self.plane is None else self.plane
        if self.needs_image:
            self.predictor.set_image(plane)
        if self.state is None:
            self.predictor.reset()
        else:
            self.predictor.set_state(self.state)
        probs = self.predictor.predict(self.clicks, prev_mask=self.prev_mask)
        return JobResult(np.asarray(probs, dtype=np.float32), self.predictor.get_state(), plane)
