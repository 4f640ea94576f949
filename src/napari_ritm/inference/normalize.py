"""One normalisation for every caller (widget, CLI, evaluation): any microscopy image -> RGB [0, 1].

:func:`normalize_image` turns 2D gray, RGB, RGBA or a chosen channel of a multichannel image, of
any numeric dtype, into the (H, W, 3) float32 array in [0, 1] that ``Predictor.set_image`` takes.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["PERCENTILES", "intensity_limits", "normalize_image", "scale_to_rgb01"]

#: Robust contrast limits used when no ``contrast_limits`` are given for non-uint8 data.
PERCENTILES = (0.5, 99.5)


def normalize_image(
    image: np.ndarray,
    *,
    channel: int | None = None,
    channel_axis: int | None = None,
    contrast_limits: Sequence[float] | None = None,
) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] from a 2D image of any dtype.

    ``image``: (H, W) gray, (H, W, 3) RGB, (H, W, 4) RGBA (alpha dropped), (H, W, 1), or a
    multichannel array with ``channel`` (index) chosen along ``channel_axis`` (default: the last
    axis). ``channel_axis`` alone moves that axis last (e.g. 0 for (3, H, W) RGB).

    Intensities: ``contrast_limits`` (lo, hi), e.g. a napari layer's, map lo -> 0 and hi -> 1
    (clipped). Without them, uint8 is divided by 255 exactly as the RITM reference does
    (``u8 / float32(255)``), bool maps to 0/1, and any other dtype (uint16, int, float) uses
    the robust percentiles :data:`PERCENTILES` = (0.5, 99.5) of its finite values (the
    min/max when those two coincide). RGB uses one (lo, hi) for all three channels.
    NaN and -inf become 0, +inf becomes 1.

    Raises ValueError for an unsupported shape, an empty image, no finite values, a constant
    image or ``contrast_limits`` with hi <= lo.
    """
    image = np.asarray(image)
    if image.size == 0:
        raise ValueError(f"the image is empty (shape {image.shape})")
    if image.dtype.kind not in "biuf":
        raise ValueError(f"unsupported image dtype {image.dtype}")
    if channel_axis is not None:
        if image.ndim < 3:
            raise ValueError(f"channel_axis={channel_axis} needs an image with a channel axis, "
                             f"got shape {image.shape}")
        image = np.moveaxis(image, channel_axis, -1)
    if channel is not None:
        if image.ndim != 3:
            raise ValueError(
                f"channel={channel} needs a 3D (H, W, C) image, got shape {image.shape}"
            )
        if not -image.shape[-1] <= channel < image.shape[-1]:
            raise ValueError(f"channel {channel} does not exist: the image has "
                             f"{image.shape[-1]} channels")
        image = image[..., channel]
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
        raise ValueError(
            f"cannot use an image of shape {image.shape} directly: expected (H, W), (H, W, 3) or "
            "(H, W, 4); choose one channel (channel=, channel_axis=) or one slice of a stack"
        )

    lo, hi = _limits(image, contrast_limits)
    return scale_to_rgb01(image, lo, hi)


def scale_to_rgb01(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(H, W) or (H, W, 3) pixels of any numeric dtype -> (H, W, 3) float32 in [0, 1], mapping
    ``lo`` -> 0 and ``hi`` -> 1 (clipped; NaN and -inf -> 0, +inf -> 1). uint8 with (0, 255)
    is exactly ``u8 / float32(255)``. No checks: see :func:`intensity_limits`."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if image.dtype == np.uint8 and (lo, hi) == (0.0, 255.0):
        out = image.astype(np.float32) / np.float32(255)
    else:
        out = image.astype(np.float32)
        if out.dtype.kind == "f":
            out = np.nan_to_num(out, copy=False, nan=lo, posinf=hi, neginf=lo)
        out -= np.float32(lo)
        out /= np.float32(hi - lo)
        np.clip(out, 0.0, 1.0, out=out)
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    return out


def intensity_limits(
    image: np.ndarray, contrast_limits: Sequence[float] | None = None
) -> tuple[float, float]:
    """The (lo, hi) that :func:`normalize_image` maps to 0 and 1 for ``image`` (any shape):
    ``contrast_limits`` when given, else (0, 255) for uint8, (0, 1) for bool, the percentiles
    :data:`PERCENTILES` otherwise. Raises ValueError for an empty, non-finite or constant image
    or invalid limits. Pass a subsample (e.g. every 8th pixel) to estimate a large plane's."""
    image = np.asarray(image)
    if image.size == 0:
        raise ValueError(f"the image is empty (shape {image.shape})")
    if image.dtype.kind not in "biuf":
        raise ValueError(f"unsupported image dtype {image.dtype}")
    return _limits(image, contrast_limits)


def _limits(image: np.ndarray, contrast_limits: Sequence[float] | None) -> tuple[float, float]:
    """(lo, hi) mapped to 0 and 1; checks for constant images and non-finite data."""
    if image.dtype.kind == "f":
        finite = image[np.isfinite(image)]
        if finite.size == 0:
            raise ValueError("the image has no finite values (all NaN or inf)")
    else:
        finite = image
    data_min, data_max = float(finite.min()), float(finite.max())
    if data_min == data_max:
        raise ValueError(f"the image is constant (every pixel is {data_min:g}): nothing to segment")

    if contrast_limits is not None:
        lo, hi = (float(v) for v in contrast_limits)
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ValueError(f"contrast limits must be finite with low < high, got ({lo}, {hi})")
        return lo, hi
    if image.dtype == np.uint8:
        return 0.0, 255.0
    if image.dtype == bool:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, PERCENTILES))
    if hi <= lo:
        lo, hi = data_min, data_max
    return lo, hi
