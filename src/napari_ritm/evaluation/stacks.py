"""3D stacks with known objects, for developing and measuring propagation (numpy / scipy only).

:func:`synthetic_nuclei` renders a fluorescence stack of nuclei as a confocal or light-sheet
microscope sees them: ellipsoids and irregular blobs whose cross-sections shrink to a point at
both caps, some touching their neighbours (touching voxels are split between the two by the
nearer surface, never shared), chromatin texture, an anisotropic point-spread function (the
axial blur several times the lateral one), z-steps of 1-3 pixels, out-of-focus haze, photon
and read noise. The labels are the objects before blurring.

:func:`linked_sections` turns consecutive 2D label images whose ids are not linked (serial EM
sections, each labelled on its own) into a stack whose objects keep one id from slice to
slice: a section's object takes the id of the object of the previous section it overlaps
best (IoU >= ``min_iou``, one to one).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["STACK_KINDS", "NucleiStack", "linked_sections", "object_extents", "synthetic_nuclei"]

#: Kinds of synthetic stacks: shape of the nuclei and the axial step (pixels per slice).
STACK_KINDS = {
    "ellipsoids": {"irregular": 0.0, "z_step": 1.0},
    "irregular": {"irregular": 0.25, "z_step": 1.0},
    "anisotropic": {"irregular": 0.15, "z_step": 2.5},
}


@dataclass(frozen=True)
class NucleiStack:
    """A synthetic stack: ``image`` (Z, H, W) uint16, ``labels`` (Z, H, W) int32 (0 background,
    1..n nuclei), ``z_step`` (lateral pixels per slice), ``kind``, ``seed``."""

    image: np.ndarray
    labels: np.ndarray
    z_step: float
    kind: str
    seed: int


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    return field / max(float(field.std()), 1e-6)


def synthetic_nuclei(
    seed: int,
    kind: str = "ellipsoids",
    *,
    depth: int = 48,
    size: int = 256,
    nuclei: int = 18,
    radius: tuple[float, float] = (9.0, 20.0),
    touch_prob: float = 0.35,
) -> NucleiStack:
    """A stack of ``depth`` slices of ``size`` x ``size`` pixels with up to ``nuclei`` nuclei
    of ``kind`` (:data:`STACK_KINDS`), lateral semi-axes in ``radius`` pixels. A share
    ``touch_prob`` of the nuclei is placed against one already there; a nucleus whose box does
    not fit the stack with a slice of margin, or that would overlap another by more than
    touching, is drawn again (up to 20 tries each)."""
    if kind not in STACK_KINDS:
        raise ValueError(f"unknown stack kind {kind!r}; choose from {', '.join(STACK_KINDS)}")
    params = STACK_KINDS[kind]
    z_step, irregular = float(params["z_step"]), float(params["irregular"])
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(np.arange(depth) * z_step, np.arange(size), np.arange(size),
                             indexing="ij", sparse=True)
    # "distance" of each voxel to each nucleus surface: < 1 inside; voxels go to the smallest
    best = np.full((depth, size, size), np.inf, np.float32)
    labels = np.zeros((depth, size, size), np.int32)
    wobble = (_smooth_noise(rng, (depth, size, size), (4 / z_step, 6, 6)).astype(np.float32)
              if irregular else None)
    centres: list[tuple[np.ndarray, float]] = []
    count = 0
    for _ in range(nuclei * 20):
        if count == nuclei:
            break
        semi = np.array([rng.uniform(*radius) * rng.uniform(0.7, 1.1),  # axial, in pixels
                         rng.uniform(*radius), rng.uniform(*radius)])
        if centres and rng.random() < touch_prob:
            other, other_r = centres[int(rng.integers(len(centres)))]
            direction = rng.normal(size=3)
            direction[0] *= 0.4
            direction /= np.linalg.norm(direction)
            centre = other + direction * (other_r + semi[1:].mean()) * 0.95
        else:
            centre = np.array([rng.uniform(0, depth * z_step), rng.uniform(0, size),
                               rng.uniform(0, size)])
        lo, hi = centre - semi, centre + semi
        if (lo[0] < z_step or hi[0] > (depth - 2) * z_step or lo[1] < 2 or lo[2] < 2
                or hi[1] > size - 3 or hi[2] > size - 3):
            continue
        angle = rng.uniform(0, np.pi)
        cos, sin = np.cos(angle), np.sin(angle)
        z0, z1 = int(lo[0] // z_step), int(hi[0] // z_step) + 2
        y0, y1, x0, x1 = int(lo[1]) - 1, int(hi[1]) + 2, int(lo[2]) - 1, int(hi[2]) + 2
        dz = (zz[z0:z1] - centre[0]) / semi[0]
        dy, dx = yy[:, y0:y1] - centre[1], xx[:, :, x0:x1] - centre[2]
        u = (cos * dy + sin * dx) / semi[1]
        v = (-sin * dy + cos * dx) / semi[2]
        dist = np.sqrt(dz**2 + u**2 + v**2).astype(np.float32)
        if wobble is not None:
            dist = dist * (1 + irregular * wobble[z0:z1, y0:y1, x0:x1])
        box = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
        inside = dist < 1
        taken = labels[box] > 0
        if (inside & taken).sum() > 0.08 * inside.sum():  # more than touching
            continue
        count += 1
        mine = inside & (dist < best[box])
        labels[box][mine] = count
        best[box][mine] = dist[mine]
        centres.append((centre, float(semi[1:].mean())))
    labels = _drop_specks(labels)
    image = _render(labels, z_step, rng)
    return NucleiStack(image, labels, z_step, kind, seed)


def _drop_specks(labels: np.ndarray, min_pixels: int = 3) -> np.ndarray:
    """Each object keeps only its largest 3D part and loses cross-sections under
    ``min_pixels`` pixels (a touching neighbour can cut off slivers)."""
    out = np.zeros_like(labels)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        parts, n = ndimage.label(labels[box] == index)
        if n == 0:
            continue
        keep = parts == 1 + int(np.bincount(parts.ravel())[1:].argmax())
        keep &= keep.sum(axis=(1, 2), keepdims=True) >= min_pixels
        out[box][keep] = index
    return out


def _render(labels: np.ndarray, z_step: float, rng: np.random.Generator) -> np.ndarray:
    """The microscope's view of ``labels``: bright nuclei with chromatin texture and darker
    nucleoli, haze, an anisotropic blur, photon and read noise; uint16."""
    shape = labels.shape
    n = int(labels.max())
    brightness = np.concatenate([[0.0], rng.uniform(0.35, 1.0, n)]).astype(np.float32)
    signal = brightness[labels]
    texture = _smooth_noise(rng, shape, (1.0 / z_step, 1.2, 1.2)).astype(np.float32)
    signal *= 1 + 0.18 * texture
    # nucleoli: a few darker blobs inside
    spots = _smooth_noise(rng, shape, (2.0 / z_step, 2.5, 2.5)) > 2.0
    signal[spots & (labels > 0)] *= 0.55
    lateral = rng.uniform(0.9, 1.6)
    axial = lateral * rng.uniform(2.0, 3.5) / z_step
    blurred = ndimage.gaussian_filter(signal, (axial, lateral, lateral))
    haze = ndimage.gaussian_filter(signal, (3 * axial, 8, 8)) * rng.uniform(0.1, 0.3)
    background = 0.04 + 0.03 * _smooth_noise(rng, shape, (8, 40, 40)).clip(-1, 1)
    clean = np.clip(blurred + haze + background, 0, None)
    photons = float(np.exp(rng.uniform(np.log(40), np.log(400))))
    counts = rng.poisson(clean * photons).astype(np.float32)
    counts += rng.normal(0, rng.uniform(1.0, 4.0), shape)
    scale = 4000.0 / photons
    return np.clip(100 + counts * scale, 0, 65535).astype(np.uint16)


def linked_sections(sections: list[np.ndarray], min_iou: float = 0.3) -> np.ndarray:
    """(Z, H, W) int32 labels from consecutive (H, W) label images: each object keeps the id of
    the object of the previous section it overlaps best when their IoU is at least ``min_iou``
    (one to one, best pairs first); the others get new ids. 0 stays background."""
    out = np.zeros((len(sections), *sections[0].shape), np.int32)
    next_id = 1
    previous = None
    for z, section in enumerate(sections):
        section = np.asarray(section)
        mapping: dict[int, int] = {}
        if previous is not None:
            both = (section > 0) & (previous > 0)
            pairs, inter = np.unique(np.stack([section[both], previous[both]]), axis=1,
                                     return_counts=True)
            areas_now = np.bincount(section.ravel())
            areas_before = np.bincount(previous.ravel())
            scored = []
            for (a, b), c in zip(pairs.T, inter):
                iou = c / (areas_now[a] + areas_before[b] - c)
                if iou >= min_iou:
                    scored.append((iou, int(a), int(b)))
            used = set()
            for _, a, b in sorted(scored, reverse=True):
                if a not in mapping and b not in used:
                    mapping[a] = b
                    used.add(b)
        for a in np.unique(section[section > 0]):
            if int(a) not in mapping:
                mapping[int(a)] = next_id
                next_id += 1
        lut = np.zeros(int(section.max()) + 1, np.int32)
        for a, b in mapping.items():
            lut[a] = b
        out[z] = lut[section]
        previous = out[z]
    return out


def object_extents(labels: np.ndarray) -> dict[int, tuple[int, int]]:
    """First and last slice (inclusive) of each object of a (Z, H, W) stack, by id."""
    out = {}
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is not None:
            out[index] = (box[0].start, box[0].stop - 1)
    return out
