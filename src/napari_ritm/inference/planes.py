"""One plane of an image of any dimensionality, read one window at a time (no Qt).

:class:`ImageSource` reads and normalises a single (H, W) plane of an image (numpy, dask, zarr),
so a lazy stack is never loaded whole; :class:`PlaneWindows` is one plane as the
:class:`~napari_ritm.inference.base.PlaneReader` every predictor takes.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_ritm.inference.normalize import intensity_limits, normalize_image, scale_to_rgb01

__all__ = ["ImageSource", "PlaneWindows", "slice_text"]

#: Pixels of the subsample that estimates a plane's intensity range without contrast limits.
RANGE_SAMPLE_PIXELS = 1 << 20


def slice_text(key: Sequence[int]) -> str:
    """How messages name the plane at leading indices ``key``: "slice 35" in a stack, "plane 2,
    35" with several leading axes (e.g. time and z), "the image" for a 2D image."""
    key = [int(k) for k in key]
    if not key:
        return "the image"
    if len(key) == 1:
        return f"slice {key[0]}"
    return "plane " + ", ".join(map(str, key))


@dataclass(frozen=True)
class ImageSource:
    """The image to segment, read one plane at a time.

    ``data``: array-like (numpy, dask, zarr) of shape (..., H, W), or (..., H, W, C) with
    ``rgb=True``. Only the plane in use is read (``data[key]``), never the whole stack.
    ``contrast_limits``: (lo, hi) mapped to [0, 1] (a napari layer's), None for
    :func:`normalize_image`'s defaults. ``channel_axis`` (0 or -1) and ``channel``: a
    multichannel array (C, ..., H, W) or (..., H, W, C) of which only ``channel`` is used.
    """

    data: Any
    rgb: bool = False
    contrast_limits: tuple[float, float] | None = None
    channel_axis: int | None = None
    channel: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        """The spatial shape (..., H, W)."""
        shape = tuple(int(s) for s in self.data.shape)
        if self.rgb:
            return shape[:-1]
        if self.channel_axis is not None:
            return shape[1:] if self.channel_axis == 0 else shape[:-1]
        return shape

    def index(self, key: Sequence[int], rows: slice = slice(None),
              cols: slice = slice(None)) -> tuple:
        """The index of ``data`` for ``rows`` x ``cols`` of the plane at leading indices ``key``."""
        spatial = (*(int(k) for k in key), rows, cols)
        if self.channel_axis == 0:
            return (self.channel, *spatial)
        if self.channel_axis is not None:
            return (*spatial, self.channel)
        return spatial

    def normalized(self, key: Sequence[int]) -> np.ndarray:
        """The plane at leading indices ``key`` as (H, W, 3) float32 in [0, 1]."""
        plane = np.asarray(self.data[self.index(key)])
        limits = None if self.rgb else self.contrast_limits
        return normalize_image(plane, contrast_limits=limits)

    def windows(self, key: Sequence[int]) -> PlaneWindows:
        """The plane at ``key`` as a :class:`PlaneWindows` reader (nothing of it is read when
        ``contrast_limits`` are set; otherwise a subsample, for its intensity range)."""
        key = tuple(int(k) for k in key)
        limits = None if self.rgb else self.contrast_limits
        pixels = None
        if limits is None or self.data.dtype == bool:
            step = max(1, int(np.ceil(np.sqrt(self.shape[-2] * self.shape[-1]
                                              / RANGE_SAMPLE_PIXELS))))
            if step == 1:  # a small plane: read once, windows are cut from it
                pixels = np.asarray(self.data[self.index(key)])
                limits = intensity_limits(pixels, limits)
            else:
                sample = self.data[self.index(key, slice(None, None, step),
                                              slice(None, None, step))]
                limits = intensity_limits(np.asarray(sample), limits)
        lo, hi = (float(v) for v in limits)
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ValueError(f"contrast limits must be finite with low < high, got ({lo}, {hi})")
        return PlaneWindows(self, key, (lo, hi), pixels)


@dataclass(frozen=True)
class PlaneWindows:
    """One plane of an :class:`ImageSource`, read one window at a time (a ``PlaneReader`` of
    :mod:`napari_ritm.inference.window`): ``shape`` (H, W), ``read(roi)`` -> (h, w, 3) float32
    in [0, 1] with the intensity range ``limits`` (lo, hi), ``full()`` the whole plane."""

    source: ImageSource
    key: tuple[int, ...]
    limits: tuple[float, float]
    pixels: np.ndarray | None = None  # the plane, when it was read whole already

    @property
    def shape(self) -> tuple[int, int]:
        return self.source.shape[-2], self.source.shape[-1]

    def read(self, roi: tuple[int, int, int, int]) -> np.ndarray:
        rows, cols = slice(roi[0], roi[1] + 1), slice(roi[2], roi[3] + 1)
        if self.pixels is not None:
            block = self.pixels[rows, cols]
        else:
            block = self.source.data[self.source.index(self.key, rows, cols)]
        return scale_to_rgb01(np.asarray(block), *self.limits)

    def full(self) -> np.ndarray:
        """The whole plane, (H, W, 3) float32 in [0, 1] (for predictors that take it whole)."""
        return self.read((0, self.shape[0] - 1, 0, self.shape[1] - 1))
