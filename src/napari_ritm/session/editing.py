"""Writing objects into a labels array without losing a painted pixel (pure Python, no Qt).

Every write goes through ``labels.data_setitem(indices, values)`` exactly once per committed
plane, so a napari ``Labels`` layer records it as one undo step and its data array is never
replaced. The commit policy lives here:

- a new object only takes background pixels (0) unless ``overwrite`` is on;
- committing label ``k`` on a plane replaces ``k``'s pixels there: pixels of ``k`` outside the new
  mask become background, pixels of other labels are never touched (unless ``overwrite``);
- an id that does not fit the labels dtype raises :class:`LabelDtypeError` (never wraps around).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

__all__ = [
    "CommitLog",
    "LabelDtypeError",
    "LabelsLike",
    "check_label_fits",
    "check_layers_match",
    "commit_plane",
    "next_label_id",
    "plan_commit",
    "plane_index",
    "read_plane",
]


class LabelsLike(Protocol):
    """What the session needs from a labels layer: napari's ``Labels`` satisfies it.

    ``data``: integer array-like (numpy, zarr) of shape (..., H, W); ``data_setitem(indices,
    value)`` writes ``value`` (scalar or one value per index) at fancy ``indices`` and records
    one undo step.
    """

    data: Any

    def data_setitem(self, indices: tuple[np.ndarray, ...], value: Any) -> None: ...


class LabelDtypeError(ValueError):
    """The labels dtype cannot hold the id the next object needs."""


def plane_index(key: Sequence[int]) -> tuple:
    """Index of the (H, W) plane at leading indices ``key`` of an (..., H, W) array."""
    return (*(int(k) for k in key), slice(None), slice(None))


def read_plane(labels: LabelsLike, key: Sequence[int]) -> np.ndarray:
    """The (H, W) labels plane at ``key`` as a numpy array (a copy for lazy arrays)."""
    return np.asarray(labels.data[plane_index(key)])


def next_label_id(data: Any) -> int:
    """The next free id: the largest id in ``data`` plus one (1 for an empty array)."""
    if data.size == 0:
        return 1
    top = data.max() if hasattr(data, "max") else np.max(np.asarray(data))
    if hasattr(top, "compute"):  # dask
        top = top.compute()
    return max(int(top), 0) + 1


def check_label_fits(label: int, dtype: np.dtype, *, layer_name: str = "labels") -> None:
    """Raise :class:`LabelDtypeError` when ``label`` does not fit in ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        raise LabelDtypeError(
            f"the {layer_name} layer has dtype {dtype}; labels must be integers "
            "(convert the layer to uint16 or uint32)"
        )
    top = np.iinfo(dtype).max
    if not 0 < label <= top:
        raise LabelDtypeError(
            f"the {layer_name} layer is {dtype} (largest id {top}) and the next object needs id "
            f"{label}: convert the layer to a larger type (right-click the layer -> Convert "
            "datatype, e.g. uint32) and finish the object again; nothing was written"
        )


def plan_commit(
    current: np.ndarray, mask: np.ndarray, label: int, *, overwrite: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixels to change so that ``label`` covers ``mask`` on this plane, and their values.

    ``current``: (H, W) integer labels plane; ``mask``: (H, W) bool. Returns (rows, cols, values):
    pixels of ``label`` outside ``mask`` -> 0; ``mask`` pixels that are background (or any other
    label when ``overwrite``) -> ``label``. Pixels already right are left out.
    """
    mine = current == label
    allowed = np.ones_like(mask) if overwrite else (current == 0)
    grow = mask & ~mine & allowed
    shrink = mine & ~mask
    rows_g, cols_g = np.nonzero(grow)
    rows_s, cols_s = np.nonzero(shrink)
    rows = np.concatenate([rows_g, rows_s])
    cols = np.concatenate([cols_g, cols_s])
    values = np.concatenate([
        np.full(rows_g.size, label, dtype=current.dtype),
        np.zeros(rows_s.size, dtype=current.dtype),
    ])
    return rows, cols, values


def commit_plane(
    labels: LabelsLike,
    key: Sequence[int],
    mask: np.ndarray,
    label: int,
    *,
    overwrite: bool = False,
    layer_name: str = "labels",
) -> int:
    """Write ``mask`` as ``label`` into the plane at ``key`` in one ``data_setitem`` call.

    Returns the number of changed pixels (0: nothing written, no undo step).
    Raises :class:`LabelDtypeError` before writing anything when ``label`` does not fit.
    """
    check_label_fits(label, labels.data.dtype, layer_name=layer_name)
    current = read_plane(labels, key)
    if mask.shape != current.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the labels plane {current.shape}")
    rows, cols, values = plan_commit(current, mask, label, overwrite=overwrite)
    if rows.size == 0:
        return 0
    lead = tuple(np.full(rows.size, int(k), dtype=np.intp) for k in key)
    labels.data_setitem((*lead, rows, cols), values)
    return int(rows.size)


def check_layers_match(
    image_shape: Sequence[int],
    labels_shape: Sequence[int],
    *,
    image_scale: Sequence[float] | None = None,
    labels_scale: Sequence[float] | None = None,
    image_translate: Sequence[float] | None = None,
    labels_translate: Sequence[float] | None = None,
    labels_name: str = "labels",
) -> None:
    """Raise ValueError (a message for the user) unless image and labels share one pixel grid.

    ``image_shape``: the image's spatial shape (RGB axis removed); scales and translates are the
    layers' world transforms per spatial axis (None: ones / zeros). Labels must have the same
    number of axes (at least 2), the same shape and the same scale and translate, so that a world
    position falls on the same pixel of both.
    """
    image_shape, labels_shape = tuple(image_shape), tuple(labels_shape)
    if len(labels_shape) < 2:
        raise ValueError(f"the {labels_name} layer must have at least 2 axes, got {labels_shape}")
    if image_shape != labels_shape:
        raise ValueError(
            f"the {labels_name} layer has shape {labels_shape} but the image has {image_shape}: "
            "pick another labels layer or create a new one"
        )
    ndim = len(image_shape)
    for what, a, b, default in (
        ("scale", image_scale, labels_scale, 1.0),
        ("translate", image_translate, labels_translate, 0.0),
    ):
        a = np.full(ndim, default) if a is None else np.asarray(a, dtype=float)
        b = np.full(ndim, default) if b is None else np.asarray(b, dtype=float)
        if not np.allclose(a, b, rtol=1e-6, atol=1e-9):
            raise ValueError(
                f"the {labels_name} layer has {what} {tuple(b.tolist())} but the image has "
                f"{tuple(a.tolist())}: their pixels do not line up; pick another labels layer "
                "or create a new one"
            )


class CommitLog:
    """The (label, slice key) of each write a session made to the labels layer, newest last,
    following napari's undo and redo of that layer (a new write drops what redo could bring
    back, as napari's history does)."""

    def __init__(self) -> None:
        self._done: list[tuple[int, tuple[int, ...]]] = []
        self._undone: list[tuple[int, tuple[int, ...]]] = []

    @property
    def last(self) -> tuple[int, tuple[int, ...]] | None:
        return self._done[-1] if self._done else None

    def add(self, label: int, key: tuple[int, ...]) -> None:
        self._done.append((label, key))
        self._undone.clear()

    def undone(self) -> None:
        if self._done:
            self._undone.append(self._done.pop())

    def redone(self) -> None:
        if self._undone:
            self._done.append(self._undone.pop())

    def by_slice(self) -> dict[tuple[int, ...], set[int]]:
        """Slice key -> the labels written there (not undone)."""
        out: dict[tuple[int, ...], set[int]] = {}
        for label, key in self._done:
            out.setdefault(key, set()).add(label)
        return out

