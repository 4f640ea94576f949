"""Training augmentations for (image, instance labels) pairs, with numpy and scikit-image.

The RITM recipe (random resize ×0.75–1.40, horizontal flip, zero padding to the crop, random
crop, brightness/contrast and RGB shift with p = 0.75) plus what suits microscopy: vertical
flip and 90° rotations (the dihedral group: cells have no "up"), an intensity gamma,
photon (Poisson) noise: fluorescence images at low counts are grainy, and a model trained on
clean 8-bit images alone loses clicks on them; and what changes from one lab to the next:
inverted contrast (dark objects on a bright field and the reverse), optical blur and camera
read noise.
albumentations would pull opencv-python-headless, pydantic and albucore into the package for a
handful of transforms; these few lines need nothing beyond scikit-image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.transform import resize


def pad_and_crop(
    image: np.ndarray,
    labels: np.ndarray,
    crop_size: tuple[int, int],
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad (centred) to at least ``crop_size``, then crop: randomly with ``rng``, else centred.

    image (H, W, C) any dtype, labels (H, W); returns arrays of shape crop_size (+ channels).
    """
    ch, cw = crop_size
    h, w = labels.shape
    pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
    if pad_h or pad_w:
        pads = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
        image = np.pad(image, pads + ((0, 0),) * (image.ndim - 2))
        labels = np.pad(labels, pads)
        h, w = labels.shape
    if rng is None:
        top, left = (h - ch) // 2, (w - cw) // 2
    else:
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return image[top : top + ch, left : left + cw], labels[top : top + ch, left : left + cw]


class Augmenter:
    """Random geometric and intensity augmentation to a fixed crop.

    ``augmenter(image, labels, rng)``: image (H, W, 3) uint8 RGB, labels (H, W) integer ids;
    returns (image (ch, cw, 3) float32 in [0, 1], labels (ch, cw) int32). Set ``scale_range``,
    ``gamma_range`` to None or the flags/probabilities to False/0 to switch a step off.
    ``noise_prob``: share of images given photon noise first, as if ``photons`` (drawn
    log-uniformly from ``photon_range``) were counted at full intensity: ``poisson(image *
    photons) / photons``, the same in all channels of a grey image. ``invert_prob``: share of
    images shown inverted (``1 - image``); ``blur_prob``: share blurred by a Gaussian of
    ``blur_sigma`` pixels (uniform); ``read_noise_prob``: share given Gaussian noise of standard
    deviation in ``read_noise`` (uniform; after the other steps, clipped to [0, 1]).
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        *,
        scale_range: tuple[float, float] | None = (0.75, 1.40),
        hflip: bool = True,
        vflip: bool = True,
        rot90: bool = True,
        brightness_limit: tuple[float, float] = (-0.25, 0.25),
        contrast_limit: tuple[float, float] = (-0.15, 0.4),
        brightness_contrast_prob: float = 0.75,
        rgb_shift: float = 10.0,
        rgb_shift_prob: float = 0.75,
        gamma_range: tuple[float, float] | None = (0.7, 1.5),
        gamma_prob: float = 0.5,
        noise_prob: float = 0.0,
        photon_range: tuple[float, float] = (10.0, 300.0),
        invert_prob: float = 0.0,
        blur_prob: float = 0.0,
        blur_sigma: tuple[float, float] = (0.5, 1.5),
        read_noise_prob: float = 0.0,
        read_noise: tuple[float, float] = (0.01, 0.05),
    ) -> None:
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.scale_range = scale_range
        self.hflip, self.vflip, self.rot90 = hflip, vflip, rot90
        self.brightness_limit, self.contrast_limit = brightness_limit, contrast_limit
        self.brightness_contrast_prob = brightness_contrast_prob
        self.rgb_shift, self.rgb_shift_prob = rgb_shift, rgb_shift_prob
        self.gamma_range, self.gamma_prob = gamma_range, gamma_prob
        self.noise_prob, self.photon_range = noise_prob, photon_range
        self.invert_prob = invert_prob
        self.blur_prob, self.blur_sigma = blur_prob, blur_sigma
        self.read_noise_prob, self.read_noise = read_noise_prob, read_noise

    def __call__(self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        image, labels = self.geometric(image, labels, rng)
        return self.intensity(image, rng), labels.astype(np.int32, copy=False)

    def geometric(self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        """Resize, flips, rotation, pad and crop; image stays uint8."""
        if self.scale_range is not None:
            scale = rng.uniform(*self.scale_range)
            shape = (max(1, round(labels.shape[0] * scale)), max(1, round(labels.shape[1] * scale)))
            if shape != labels.shape:
                image = (
                    resize(
                        image,
                        shape + image.shape[2:],
                        order=1,
                        preserve_range=True,
                        anti_aliasing=False,
                    )
                    .round()
                    .astype(np.uint8)
                )
                labels = resize(
                    labels, shape, order=0, preserve_range=True, anti_aliasing=False
                ).astype(labels.dtype)
        if self.hflip and rng.random() < 0.5:
            image, labels = image[:, ::-1], labels[:, ::-1]
        if self.vflip and rng.random() < 0.5:
            image, labels = image[::-1], labels[::-1]
        if self.rot90:
            k = int(rng.integers(4))
            image, labels = np.rot90(image, k), np.rot90(labels, k)
        image, labels = pad_and_crop(image, labels, self.crop_size, rng)
        return np.ascontiguousarray(image), np.ascontiguousarray(labels)

    def intensity(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Inversion, blur, photon noise, brightness/contrast, RGB shift, gamma and read noise
        on a uint8 image; returns float32 in [0, 1]. (Each step with probability 0 draws no
        random number, so runs without it keep their random stream.)"""
        out = image.astype(np.float32) / np.float32(255)
        if self.invert_prob > 0 and rng.random() < self.invert_prob:
            out = np.float32(1.0) - out
        if self.blur_prob > 0 and rng.random() < self.blur_prob:
            sigma = rng.uniform(*self.blur_sigma)
            out = ndimage.gaussian_filter(out, (sigma, sigma, 0)).astype(np.float32)
        if self.noise_prob > 0 and rng.random() < self.noise_prob:
            out = self.photon_noise(out, rng)
        if rng.random() < self.brightness_contrast_prob:
            alpha = 1.0 + rng.uniform(*self.contrast_limit)
            beta = rng.uniform(*self.brightness_limit)
            out = np.clip(out * np.float32(alpha) + np.float32(beta), 0.0, 1.0)
        if self.rgb_shift > 0 and rng.random() < self.rgb_shift_prob:
            shift = rng.uniform(-self.rgb_shift, self.rgb_shift, size=3).astype(
                np.float32
            ) / np.float32(255)
            out = np.clip(out + shift, 0.0, 1.0)
        if self.gamma_range is not None and rng.random() < self.gamma_prob:
            out = out ** np.float32(rng.uniform(*self.gamma_range))
        if self.read_noise_prob > 0 and rng.random() < self.read_noise_prob:
            std = rng.uniform(*self.read_noise)
            grey = bool(np.all(out == out[..., :1]))
            noise = rng.normal(0, std, out.shape[:2] + ((1,) if grey else (out.shape[2],)))
            out = np.clip(out + noise.astype(np.float32), 0.0, 1.0)
        return out.astype(np.float32, copy=False)

    def photon_noise(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``image`` (H, W, C) float32 in [0, 1] with Poisson noise at a random photon count."""
        photons = float(np.exp(rng.uniform(*np.log(self.photon_range))))
        grey = bool(np.all(image == image[..., :1]))
        counts = rng.poisson((image[..., :1] if grey else image) * photons)
        noisy = np.minimum(counts.astype(np.float32) / np.float32(photons), np.float32(1.0))
        return np.ascontiguousarray(np.broadcast_to(noisy, image.shape))
