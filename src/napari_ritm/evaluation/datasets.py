"""Evaluation samples read from a folder of images and instance labels
(the layout of :mod:`napari_ritm.evaluation.folders`).

Every instance is one sample: its mask is the ground truth (1), everything else is background (0).
3D volumes (a label stack ``(Z, H, W)`` with an image ``(Z, H, W)`` or ``(Z, H, W, C)``) are
evaluated as **per-slice objects**: each ``(slice, instance id)`` pair whose cross-section in that
slice is not empty is one 2D sample on that slice, as a user annotating a stack slice by slice
would click it. Only label files are scanned up front (to count samples); images are read lazily,
one file in memory at a time.
"""
from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_ritm.evaluation.folders import (
    DatasetError,
    image_label_pairs,
    read_array,
    to_rgb01,
    wanted_slices,
)


@dataclass(frozen=True)
class Sample:
    """One object to segment.

    ``image``: (H, W, 3) float32 RGB in [0, 1] (uint8 inputs are exactly ``u8 / 255``);
    ``gt``: (H, W) int32 with 1 = object, 0 = background (no ignore pixels from this reader);
    ``image_name``: file name of the image; ``label``: the instance id; ``slice``: index in a
    3D stack, ``None`` for a 2D image.
    """

    image: np.ndarray
    gt: np.ndarray
    image_name: str
    label: int
    slice: int | None = None


@dataclass(frozen=True)
class _Entry:
    image_path: Path
    label_path: Path
    slice: int | None
    label: int


def _pick(ids: np.ndarray, k: int | None) -> np.ndarray:
    """``k`` ids spread evenly over the sorted ids (all of them when k is None or large)."""
    if k is None or len(ids) <= k:
        return ids
    return ids[np.unique(np.linspace(0, len(ids) - 1, k).round().astype(int))]


class InstanceDataset:
    """The samples of one ``<set>`` folder, in file-name order, then slice, then instance id.

    ``root``: the set folder (with ``images/`` and ``labels/``). ``max_objects_per_image``: keep at
    most this many instances per image file, spread evenly over the sorted ids (not the largest,
    which would favour easy objects). ``min_area``: skip instances with fewer pixels (per slice for
    stacks). ``limit``: stop after this many samples. ``names``: keep only these images, by file
    stem (``name`` for ``images/name.png``; ``name@z<k>`` keeps slice k of a stack), as a split
    file lists them. Iterating yields :class:`Sample` objects; ``len()`` is the number of
    samples. Raises :class:`DatasetError` for a folder that does not follow the layout, and
    iteration raises it for an image that cannot be used (shape, channels).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        max_objects_per_image: int | None = None,
        min_area: int = 1,
        limit: int | None = None,
        names: Collection[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.name = self.root.resolve().name
        self._entries: list[_Entry] = []
        for image_path, label_path in image_label_pairs(self.root):
            wanted = wanted_slices(image_path.stem, names)
            if wanted is not None and not wanted:
                continue
            self._entries.extend(
                self._scan(image_path, label_path, max_objects_per_image, min_area, wanted)
            )
            if limit is not None and len(self._entries) >= limit:
                del self._entries[limit:]
                break

    @staticmethod
    def _scan(
        image_path: Path, label_path: Path, k: int | None, min_area: int, wanted: set | None
    ) -> list[_Entry]:
        labels = read_array(label_path)
        if labels.ndim not in (2, 3):
            raise DatasetError(f"{label_path}: labels must be 2D or a 3D stack, got {labels.shape}")
        stack = labels[None] if labels.ndim == 2 else labels
        found = []
        for z, plane in enumerate(stack):
            if wanted is not None and "all" not in wanted and z not in wanted:
                continue
            ids, areas = np.unique(plane[plane > 0], return_counts=True)
            for label in ids[areas >= min_area]:
                found.append((None if labels.ndim == 2 else z, int(label)))
        keep = _pick(np.arange(len(found)), k)
        return [_Entry(image_path, label_path, *found[i]) for i in keep]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Sample]:
        current: Path | None = None
        image = labels = np.zeros(0)
        planes: dict[int | None, np.ndarray] = {}
        for entry in self._entries:
            if entry.image_path != current:
                current = entry.image_path
                image = read_array(entry.image_path)
                labels = read_array(entry.label_path)
                self._check_shapes(entry, image, labels)
                planes.clear()
            key = entry.slice
            if key not in planes:
                planes.clear()
                try:
                    planes[key] = to_rgb01(image if key is None else image[key])
                except ValueError as err:
                    raise DatasetError(f"{entry.image_path}: {err}") from err
            plane = labels if key is None else labels[key]
            yield Sample(
                image=planes[key],
                gt=(plane == entry.label).astype(np.int32),
                image_name=entry.image_path.name,
                label=entry.label,
                slice=key,
            )

    @staticmethod
    def _check_shapes(entry: _Entry, image: np.ndarray, labels: np.ndarray) -> None:
        hw = labels.shape[-2:]
        ok = image.shape[: labels.ndim] == labels.shape or (
            labels.ndim == 2 and image.ndim == 3 and image.shape[1:] == hw and image.shape[0] <= 4
        )
        if not ok:
            raise DatasetError(
                f"{entry.image_path.name}: image shape {image.shape} does not match "
                f"labels {labels.shape}"
            )
