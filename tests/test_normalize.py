"""normalize_image: any dtype and layout to (H, W, 3) float32 in [0, 1], clear errors otherwise."""
from __future__ import annotations

import numpy as np
import pytest

from napari_ritm.inference.normalize import PERCENTILES, normalize_image

RNG = np.random.default_rng(0)


def _check(out: np.ndarray, shape: tuple[int, int]) -> None:
    assert out.shape == (*shape, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_uint8_rgb_is_the_exact_reference_input():
    image = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = normalize_image(image)
    _check(out, (20, 30))
    np.testing.assert_array_equal(out, image.astype(np.float32) / np.float32(255))
    # napari's default limits for uint8 take the same exact path
    np.testing.assert_array_equal(normalize_image(image, contrast_limits=(0, 255)), out)


def test_gray_is_replicated_to_three_channels():
    image = RNG.integers(0, 256, (8, 9), dtype=np.uint8)
    out = normalize_image(image)
    _check(out, (8, 9))
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    np.testing.assert_array_equal(out[..., 0], image / np.float32(255))


def test_rgba_drops_alpha():
    image = RNG.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    np.testing.assert_array_equal(normalize_image(image), normalize_image(image[..., :3]))


def test_uint16_uses_robust_percentiles():
    image = RNG.integers(1000, 3000, (50, 50)).astype(np.uint16)
    image[0, 0] = 65535  # a hot pixel must not squash the contrast
    out = normalize_image(image)[..., 0]
    lo, hi = np.percentile(image, PERCENTILES)
    np.testing.assert_allclose(out, np.clip((image - lo) / (hi - lo), 0, 1), atol=1e-6)
    assert out[0, 0] == 1.0 and np.median(out) > 0.3


def test_contrast_limits_are_applied_and_clipped():
    image = np.array([[0.0, 50.0], [100.0, 200.0]], dtype=np.float64)
    out = normalize_image(image, contrast_limits=(50, 150))[..., 0]
    np.testing.assert_allclose(out, [[0.0, 0.0], [0.5, 1.0]])


def test_signed_int_and_float_inputs():
    ints = np.arange(-50, 50, dtype=np.int16).reshape(10, 10)
    _check(normalize_image(ints), (10, 10))
    floats = RNG.normal(size=(12, 13)).astype(np.float32)
    _check(normalize_image(floats), (12, 13))


def test_nan_and_inf_become_finite():
    image = RNG.random((10, 10)).astype(np.float32)
    image[0, 0], image[0, 1], image[0, 2] = np.nan, np.inf, -np.inf
    out = normalize_image(image)[..., 0]
    _check(normalize_image(image), (10, 10))
    assert (out[0, 0], out[0, 1], out[0, 2]) == (0.0, 1.0, 0.0)


def test_bool_maps_to_zero_and_one():
    image = np.zeros((5, 5), dtype=bool)
    image[2, 2] = True
    out = normalize_image(image)[..., 0]
    assert out[2, 2] == 1.0 and out.sum() == 1.0


def test_sparse_image_falls_back_to_min_max():
    image = np.zeros((100, 100), dtype=np.uint16)
    image[50, 50] = 700  # the 0.5/99.5 percentiles are both 0
    out = normalize_image(image)[..., 0]
    assert out[50, 50] == 1.0 and out.sum() == 1.0


def test_chosen_channel_of_multichannel_image():
    image = RNG.integers(0, 4000, (3, 16, 17, 5)).astype(np.uint16)[0]  # (H, W, 5)
    out = normalize_image(image, channel=2)
    np.testing.assert_array_equal(out, normalize_image(image[..., 2]))
    first = normalize_image(np.moveaxis(image, -1, 0), channel=2, channel_axis=0)
    np.testing.assert_array_equal(first, out)


def test_channel_axis_alone_moves_rgb_last():
    image = RNG.integers(0, 256, (3, 8, 9), dtype=np.uint8)
    out = normalize_image(image, channel_axis=0)
    np.testing.assert_array_equal(out, normalize_image(np.moveaxis(image, 0, -1)))


@pytest.mark.parametrize(
    "image,kwargs,message",
    [
        (np.full((10, 10), 7, dtype=np.uint16), {}, "constant"),
        (np.full((10, 10, 3), 116, dtype=np.uint8), {}, "constant"),
        (np.zeros((0, 5), dtype=np.uint8), {}, "empty"),
        (np.full((4, 4), np.nan), {}, "finite"),
        (np.zeros((5, 10, 10), dtype=np.uint16), {}, "shape"),
        (np.zeros((2, 3, 4, 5)), {}, "shape"),
        (np.arange(100.0).reshape(10, 10), {"contrast_limits": (5, 5)}, "contrast"),
        (np.arange(300.0).reshape(10, 10, 3), {"channel": 3}, "channel"),
        (np.arange(100.0).reshape(10, 10), {"channel": 0}, "channel"),
        (np.array([["a", "b"]]), {}, "dtype"),
    ],
)
def test_bad_images_raise_clear_errors(image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        normalize_image(image, **kwargs)
