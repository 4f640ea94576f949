"""A replayable record of everything that shaped the labels in a session.

The :class:`~napari_ritm.session.Session` appends one entry per action it applies: the
predictor (model, its file's SHA-256, mode, settings), clicks (with the plane), undos,
finishes, resets, refines, slice changes, threshold, overwrite and contrast changes,
propagations (how many slices were applied, and whether the user stopped it) and undos/redos
of the labels layer. :meth:`Record.save` writes it as a small JSON sidecar;
:func:`napari_ritm.session.replay.replay` runs the same actions again on the image and returns
the labels.

Replay on the same machine with the same model and torch thread count gives the same labels bit
for bit; on another CPU floating-point rounding may move a few pixels where the probability is
within ~1e-5 of the threshold. Edits made outside the session (napari's brush) are not
recorded: the record keeps a fingerprint of the labels it ended with, and :func:`replay` says
whether it got there.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RECORD_FORMAT", "ArrayLabels", "Record", "fingerprint", "new_record"]

RECORD_FORMAT = "napari-ritm-record/1"
_SAMPLE = 1 << 20  # pixels of the subsample a fingerprint hashes


def fingerprint(data: Any) -> str:
    """A cheap identity of an array: shape, dtype and the SHA-256 of an even subsample of at
    most ~1M values (lazy arrays are read only there)."""
    shape = tuple(int(s) for s in data.shape)
    step = max(1, int(np.ceil((np.prod(shape, dtype=float) / _SAMPLE) ** (1 / max(len(shape), 1)))))
    sample = np.ascontiguousarray(np.asarray(data[tuple(slice(None, None, step) for _ in shape)]))
    digest = hashlib.sha256(sample.tobytes()).hexdigest()[:16]
    return f"{'x'.join(map(str, shape))}:{np.dtype(data.dtype).name}:{digest}"


class ArrayLabels:
    """A plain (numpy) labels array with the interface the session writes through: ``data``,
    ``data_setitem`` (in place) and napari-like ``undo`` / ``redo`` of those writes."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self._undo: list[tuple[tuple, np.ndarray, Any]] = []
        self._redo: list[tuple[tuple, np.ndarray, Any]] = []

    def data_setitem(self, indices: tuple, value: Any) -> None:
        before = self.data[indices].copy()
        self.data[indices] = value
        self._undo.append((indices, before, value))
        self._redo.clear()

    @property
    def history(self) -> list[tuple[tuple, np.ndarray, Any]]:
        """The writes ``undo`` can take back, oldest first: (indices, values before, value)."""
        return list(self._undo)

    @property
    def undo_steps(self) -> int:
        """How many writes ``undo`` can take back."""
        return len(self._undo)

    def undo(self) -> None:
        if self._undo:
            indices, before, value = self._undo.pop()
            self.data[indices] = before
            self._redo.append((indices, before, value))

    def redo(self) -> None:
        if self._redo:
            indices, before, value = self._redo.pop()
            self.data[indices] = value
            self._undo.append((indices, before, value))


@dataclass
class Record:
    """The actions of one session. ``image`` / ``labels``: what they were (shape, dtype,
    fingerprint; the image's rgb/channel settings); ``actions``: one dict per action, ``op``
    first; ``final``: the labels' fingerprint when the record was saved."""

    image: dict
    labels: dict
    actions: list[dict] = field(default_factory=list)
    final: str | None = None

    def add(self, op: str, **fields: Any) -> None:
        self.actions.append({"op": op, **fields})

    def to_json(self) -> dict:
        return {"format": RECORD_FORMAT, "image": self.image, "labels": self.labels,
                "actions": self.actions, "final": self.final}

    def save(self, path: str | Path, labels: Any = None) -> None:
        """Write the record as JSON (``labels``: its current data, for the final fingerprint)."""
        if labels is not None:
            self.final = fingerprint(labels)
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Record:
        """Read a record; raises ValueError naming the file when it is not one."""
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read record {path}: {err}") from None
        if not isinstance(raw, dict) or raw.get("format") != RECORD_FORMAT:
            raise ValueError(f"{path} is not a napari-ritm record ({RECORD_FORMAT})")
        return cls(raw["image"], raw["labels"], list(raw["actions"]), raw.get("final"))


def new_record(image: Any, labels: Any) -> Record:
    """An empty record for a session on ``image`` (an ImageSource) and ``labels`` (its data)."""
    limits = image.contrast_limits
    return Record(
        image={"shape": list(image.data.shape), "dtype": np.dtype(image.data.dtype).name,
               "rgb": image.rgb, "channel_axis": image.channel_axis, "channel": image.channel,
               "contrast_limits": None if limits is None else [float(v) for v in limits],
               "fingerprint": None},
        labels={"shape": list(labels.shape), "dtype": np.dtype(labels.dtype).name,
                "fingerprint": fingerprint(labels)},
    )
