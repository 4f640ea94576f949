"""Clicks and their encoding into the network's points tensor.

A :class:`Click` is one user click in image pixels (row ``y``, column ``x``, sign). A
:class:`ClickList` keeps them in the order they were made, which is the order RITM numbers them.
:func:`encode_points` is the one place that lays clicks out the way the network expects them.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_THRESHOLD", "Click", "ClickList", "encode_points", "innermost_pixel"]


#: The probability above which a pixel belongs to the object: the RITM paper's evaluation
#: threshold, where the widget's Threshold slider starts and what the commands use by default.
DEFAULT_THRESHOLD = 0.49

@dataclass(frozen=True)
class Click:
    """One click: ``y`` (row) and ``x`` (column) in image pixels, ``positive`` for the object.

    Coordinates are floats so that sub-pixel clicks (napari world coordinates) survive; the
    predictor maps them into network-input pixels without rounding.
    """

    y: float
    x: float
    positive: bool


class ClickList:
    """The clicks on the current object, in the order they were made.

    Supports ``append``, ``undo`` (removes and returns the last click), ``clear``, iteration,
    ``len``, indexing and the counts ``num_positive`` / ``num_negative``. Pass the list (or any
    sequence of :class:`Click`) to ``Predictor.predict``.
    """

    def __init__(self, clicks: Iterable[Click] = ()) -> None:
        self._clicks: list[Click] = list(clicks)

    def append(self, click: Click) -> None:
        """Add ``click`` as the newest click."""
        self._clicks.append(click)

    def undo(self) -> Click:
        """Remove and return the newest click; raises IndexError when the list is empty."""
        if not self._clicks:
            raise IndexError("no click to undo")
        return self._clicks.pop()

    def clear(self) -> None:
        """Remove every click (a new object)."""
        self._clicks.clear()

    @property
    def num_positive(self) -> int:
        return sum(click.positive for click in self._clicks)

    @property
    def num_negative(self) -> int:
        return len(self._clicks) - self.num_positive

    def __iter__(self) -> Iterator[Click]:
        return iter(self._clicks)

    def __len__(self) -> int:
        return len(self._clicks)

    def __getitem__(self, index: int) -> Click:
        return self._clicks[index]

    def __repr__(self) -> str:
        return f"ClickList({self._clicks!r})"


def encode_points(
    coords: np.ndarray, positive: Sequence[bool], *, index_offset: int = 0
) -> np.ndarray:
    """The network's points tensor for a batch of click sets that share their signs.

    ``coords``: float (B, K, 2) array of (y, x) in network-input pixels, one row per click in
    click order (batch items differ only in their coordinates, e.g. the flipped copy).
    ``positive``: K booleans. Returns float32 (B, 2N, 3) with N = max(#positive, #negative, 1):
    rows 0..N-1 are the positive clicks and rows N..2N-1 the negative clicks, each
    ``(y, x, index)`` with ``index = index_offset + position in click order``; unused rows are
    (-1, -1, -1). Coordinates are rounded to float32 once, here.
    """
    coords = np.asarray(coords, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    batch, count = coords.shape[0], positive.shape[0]
    if coords.shape != (batch, count, 2):
        raise ValueError(f"coords must have shape (B, {count}, 2), got {coords.shape}")
    pos_rows, neg_rows = np.flatnonzero(positive), np.flatnonzero(~positive)
    n = max(len(pos_rows), len(neg_rows), 1)
    points = np.full((batch, 2 * n, 3), -1.0, dtype=np.float32)
    for start, rows in ((0, pos_rows), (n, neg_rows)):
        stop = start + len(rows)
        points[:, start:stop, :2] = coords[:, rows]
        points[:, start:stop, 2] = index_offset + rows
    return points


def innermost_pixel(mask: np.ndarray) -> tuple[int, int]:
    """(row, col) of the pixel of non-empty ``mask`` (H, W) bool farthest from its outside (the
    image border counts as outside), the first in row-major order on ties: where a user, and the
    evaluation clicker, put the first click on an object."""
    from scipy import ndimage

    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    dist = ndimage.distance_transform_edt(np.pad(mask[r0:r1, c0:c1], 1))[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(r0 + r), int(c0 + c)

