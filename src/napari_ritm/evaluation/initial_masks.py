"""Initial masks as automatic tools get them wrong: synthetic errors and classic pipelines.

Refining starts from a mask another tool made. Two sources of such masks, for the refine
benchmark (``benchmarks/refine.py``) and for training samples whose previous-mask input is an
external mask (:mod:`napari_ritm.training.guidance`):

- :func:`synthetic_error`: one object's mask with one kind of error of :data:`ERROR_KINDS`
  (merged with a neighbour, split, boundary too tight or too loose, a lobe missing or added,
  the neighbouring slice's mask, a rough polygon);
- :func:`threshold_watershed`: scikit-image's textbook pipeline (Otsu or local threshold, then a
  distance-transform watershed), and :func:`matched_masks`, which gives each ground-truth
  object the automatic label that overlaps it most.

Everything is numpy / scipy / scikit-image and draws its randomness from the generator passed in.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.draw import polygon2mask
from skimage.feature import peak_local_max
from skimage.filters import threshold_local, threshold_otsu
from skimage.measure import approximate_polygon, find_contours
from skimage.morphology import disk
from skimage.segmentation import watershed

__all__ = [
    "ERROR_KINDS",
    "PIPELINES",
    "bright_objects",
    "matched_masks",
    "synthetic_error",
    "threshold_watershed",
]

#: The synthetic error kinds, each reported on its own by the refine benchmark.
ERROR_KINDS = (
    "merged",
    "split",
    "tight",
    "loose",
    "lobe_missing",
    "lobe_extra",
    "neighbour_slice",
    "polygon",
)

#: The classic automatic pipelines of :func:`threshold_watershed`, by name.
PIPELINES = {"otsu_watershed": False, "local_watershed": True}


def _radius(mask: np.ndarray) -> float:
    """The radius of the disk of the same area as ``mask``."""
    return math.sqrt(max(int(mask.sum()), 1) / math.pi)


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, disk(pixels)) if pixels > 0 else mask.copy()


def _shrink(mask: np.ndarray, pixels: int) -> np.ndarray:
    return ndimage.binary_erosion(mask, disk(pixels)) if pixels > 0 else mask.copy()


def _boundary_point(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    edge = mask & ~ndimage.binary_erosion(mask)
    points = np.argwhere(edge)
    return points[rng.integers(len(points))]


def _disk_at(shape: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _merged(labels: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray | None:
    mask = labels == target
    reach = max(2, round(0.3 * _radius(mask)))
    ring = _grow(mask, reach) & ~mask
    ids, counts = np.unique(labels[ring & (labels > 0)], return_counts=True)
    if ids.size == 0:
        return None
    neighbour = int(rng.choice(ids, p=counts / counts.sum()))
    both = mask | (labels == neighbour)
    # a threshold joins touching objects through the gap between them
    return ndimage.binary_closing(both, disk(reach), border_value=0) | both


def _split(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    rows, cols = np.nonzero(mask)
    angle = rng.uniform(0, math.pi)
    side = (rows - rows.mean()) * math.cos(angle) + (cols - cols.mean()) * math.sin(angle)
    keep = rng.uniform(0.35, 0.75)
    cut = np.quantile(side, keep)
    out = np.zeros_like(mask)
    out[rows[side <= cut], cols[side <= cut]] = True
    # the piece that a splitting tool labels: its largest connected part
    parts, n = ndimage.label(out)
    if n == 0:
        return None
    sizes = np.bincount(parts.ravel())[1:]
    return parts == 1 + int(sizes.argmax())


def _neighbour_slice(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    radius = _radius(mask)
    scale = math.exp(rng.uniform(math.log(0.8), math.log(1.25)))
    angle = rng.uniform(-0.3, 0.3)
    shift = rng.uniform(-0.25, 0.25, size=2) * radius
    centre = np.argwhere(mask).mean(axis=0)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix = rot / scale
    offset = centre - matrix @ (centre + shift)
    out = ndimage.affine_transform(mask.astype(np.float32), matrix, offset, order=1) > 0.5
    wobble = int(rng.integers(-2, 3))
    return _grow(out, wobble) if wobble > 0 else _shrink(out, -wobble)


def _polygon(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    contours = find_contours(np.pad(mask, 1).astype(np.float32), 0.5)
    if not contours:
        return None
    contour = max(contours, key=len) - 1
    tolerance = rng.uniform(1.0, max(1.5, 0.3 * _radius(mask)))
    vertices = approximate_polygon(contour, tolerance)
    if len(vertices) < 4:
        return None
    return polygon2mask(mask.shape, vertices)


def synthetic_error(
    kind: str, labels: np.ndarray, target: int, rng: np.random.Generator
) -> np.ndarray | None:
    """Object ``target`` of instance ``labels`` (H, W) with one error of ``kind`` (one of
    :data:`ERROR_KINDS`), as (H, W) bool; None when that error cannot happen to this object
    (no neighbour to merge with, too small to split, ...).

    - ``merged``: joined with a neighbour within 0.3 radii (drawn by contact length), the gap
      between them closed;
    - ``split``: the larger part left of a straight cut keeping 35-75 % of the pixels;
    - ``tight`` / ``loose``: the boundary 1-4 px inside / outside;
    - ``lobe_missing`` / ``lobe_extra``: a disk of 0.3-0.6 radii at a boundary point removed /
      added;
    - ``neighbour_slice``: scaled by 0.8-1.25, rotated up to 17 degrees, shifted up to a
      quarter radius, its boundary moved by up to 2 px;
    - ``polygon``: the outline simplified to a polygon within 1 px to 0.3 radii.
    """
    labels = np.asarray(labels)
    found = ndimage.find_objects((labels == target).astype(np.int8))
    if not found or found[0] is None:
        return None
    # work in a window around the object: the errors reach at most a couple of radii out
    rows, cols = found[0]
    margin = 8 + round(2 * math.sqrt((rows.stop - rows.start) * (cols.stop - cols.start)))
    r0, c0 = max(rows.start - margin, 0), max(cols.start - margin, 0)
    window = (slice(r0, rows.stop + margin), slice(c0, cols.stop + margin))
    part = _error_in_window(kind, labels[window], target, rng)
    if part is None:
        return None
    out = np.zeros(labels.shape, bool)
    out[window] = part
    return out


def _error_in_window(
    kind: str, labels: np.ndarray, target: int, rng: np.random.Generator
) -> np.ndarray | None:
    mask = labels == target
    if mask.sum() < 10:
        return None
    if kind == "merged":
        out = _merged(labels, target, rng)
    elif kind == "split":
        out = _split(mask, rng)
    elif kind in ("tight", "loose"):
        pixels = int(rng.integers(1, 5))
        out = _shrink(mask, pixels) if kind == "tight" else _grow(mask, pixels)
    elif kind in ("lobe_missing", "lobe_extra"):
        radius = rng.uniform(0.3, 0.6) * _radius(mask)
        lobe = _disk_at(mask.shape, _boundary_point(mask, rng), radius)
        out = mask & ~lobe if kind == "lobe_missing" else mask | lobe
    elif kind == "neighbour_slice":
        out = _neighbour_slice(mask, rng)
    elif kind == "polygon":
        out = _polygon(mask, rng)
    else:
        raise ValueError(f"unknown error kind {kind!r}; choose from {', '.join(ERROR_KINDS)}")
    if out is None or out.sum() < 5:
        return None
    return out


def bright_objects(gray: np.ndarray, labels: np.ndarray) -> bool:
    """Whether the objects of ``labels`` are brighter than the background in ``gray`` (the
    polarity a user picks for a threshold)."""
    inside = labels > 0
    if not inside.any() or inside.all():
        return True
    return float(gray[inside].mean()) >= float(gray[~inside].mean())


def threshold_watershed(
    image: np.ndarray,
    *,
    bright: bool = True,
    local: bool = False,
    min_distance: int = 4,
    min_area: int = 20,
) -> np.ndarray:
    """Instance labels (H, W) int32 from the textbook pipeline: grey image (mean of RGB)
    smoothed by a 1 px Gaussian; Otsu's threshold (``local``: a local mean threshold over
    blocks of about a sixth of the image, at least 31 px), keeping the bright (``bright``) or
    dark side; holes filled, parts under ``min_area`` px dropped; then a watershed of the
    negated distance transform from its maxima at least ``min_distance`` px apart.

    ``image``: (H, W) or (H, W, 3), any numeric dtype."""
    gray = np.asarray(image, dtype=np.float32)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    gray = ndimage.gaussian_filter(gray, 1.0)
    if float(gray.max()) == float(gray.min()):
        return np.zeros(gray.shape, np.int32)
    if local:
        block = max(31, (min(gray.shape) // 6) | 1)
        # a margin of 5 % of the range keeps flat background out of the foreground
        margin = 0.05 * float(np.subtract(*np.percentile(gray, [99, 1])))
        level = threshold_local(gray, block, method="mean")
        level = level + margin if bright else level - margin
    else:
        level = threshold_otsu(gray)
    fg = gray > level if bright else gray < level
    fg = ndimage.binary_fill_holes(ndimage.binary_opening(fg))
    parts, n = ndimage.label(fg)
    if n == 0:
        return np.zeros(gray.shape, np.int32)
    sizes = np.bincount(parts.ravel())
    fg &= sizes[parts] >= min_area
    dist = ndimage.distance_transform_edt(fg)
    peaks = peak_local_max(dist, min_distance=min_distance, labels=ndimage.label(fg)[0],
                           exclude_border=False)
    markers = np.zeros(gray.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-dist, markers, mask=fg).astype(np.int32)


def matched_masks(auto: np.ndarray, gt: np.ndarray) -> dict[int, np.ndarray]:
    """For each object id of ``gt`` (H, W), the mask of the label of ``auto`` (H, W) that
    overlaps it most, as (H, W) bool (all False when no automatic label touches it)."""
    auto, gt = np.asarray(auto), np.asarray(gt)
    out = {}
    inside = gt > 0
    pairs, counts = np.unique(np.stack([gt[inside], auto[inside]]), axis=1, return_counts=True)
    best: dict[int, tuple[int, int]] = {}
    for (g, a), c in zip(pairs.T, counts):
        if a > 0 and c > best.get(int(g), (0, 0))[1]:
            best[int(g)] = (int(a), int(c))
    for g in np.unique(gt[inside]):
        a = best.get(int(g), (0, 0))[0]
        out[int(g)] = auto == a if a else np.zeros(gt.shape, bool)
    return out
