"""A replayable record of everything that shaped the labels in a session, and its replay.

The :class:`~napari_ritm.session.Session` appends one entry per action it applies: the
predictor (model, its file's SHA-256, mode, settings), clicks (with the plane), undos,
finishes, resets, refines, slice changes, threshold, overwrite and contrast changes,
propagations (how many slices were applied, and whether the user stopped it) and undos/redos
of the labels layer. :meth:`Record.save` writes it as a small JSON sidecar;
:func:`replay` runs the same actions again on the image and returns the labels.

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

__all__ = ["RECORD_FORMAT", "ArrayLabels", "Record", "ReplayResult", "fingerprint", "new_record",
           "predictor_from_entry", "replay"]

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


@dataclass(frozen=True)
class ReplayResult:
    """What :func:`replay` gives back: the ``labels`` array, whether it ended ``exact`` (the
    record's final fingerprint matched; None when the record has none) and ``notes``."""

    labels: np.ndarray
    exact: bool | None
    notes: list[str]


def replay(
    record: Record | str | Path,
    image: Any,
    labels: np.ndarray | None = None,
    *,
    predictor_for: Any = None,
) -> ReplayResult:
    """Run ``record``'s actions again on ``image`` (the array the session segmented, numpy or
    lazy) and return the labels it builds.

    ``labels``: the labels the session started from (default: zeros of the recorded shape and
    dtype; needed when the session refined existing labels); it is written in place.
    ``predictor_for(entry)``: builds the predictor of a recorded ``predictor`` entry (default:
    :func:`predictor_from_entry`, which loads the model by name or path and checks its hash).
    """
    from napari_ritm.planes import ImageSource
    from napari_ritm.session import Session

    record = record if isinstance(record, Record) else Record.load(record)
    notes: list[str] = []
    if fingerprint(image) != record.image["fingerprint"]:
        notes.append("the image differs from the one recorded (shape, type or pixels)")
    if labels is None:
        labels = np.zeros(record.labels["shape"], dtype=record.labels["dtype"])
    if fingerprint(labels) != record.labels["fingerprint"]:
        notes.append("the starting labels differ from the recorded ones")
    spec = record.image
    source = ImageSource(image, rgb=spec["rgb"], contrast_limits=_limits(spec["contrast_limits"]),
                         channel_axis=spec["channel_axis"], channel=spec["channel"])
    target = ArrayLabels(labels)
    session = Session(source, target, record_actions=False)
    build = predictor_for or (lambda entry: predictor_from_entry(entry, notes))
    for action in record.actions:
        _apply(session, target, dict(action), build)
    exact = None if record.final is None else fingerprint(labels) == record.final
    if exact is False:
        notes.append("the labels differ from the recorded ones (edits outside the session, "
                     "another CPU or another model)")
    return ReplayResult(labels, exact, notes)


def predictor_from_entry(entry: dict, notes: list[str] | None = None) -> Any:
    """The predictor a recorded ``predictor`` entry describes (model name or path, mode,
    settings), on one torch thread as the widget runs it; notes a model whose file hash
    differs from the recorded one."""
    from napari_ritm.inference.modes import make_predictor, set_interactive_threads
    from napari_ritm.model.zoo import load_model, model_file_hash

    if entry.get("model") is None:
        raise ValueError("the record does not say which model predicted: replay it with "
                         "predictor_for=...")
    digest = model_file_hash(entry["model"])
    if notes is not None and entry.get("sha256") and digest != entry["sha256"]:
        notes.append(f"model {entry['model']} is not the file recorded (SHA-256 differs)")
    set_interactive_threads()
    return make_predictor(load_model(entry["model"]), entry["mode"],
                          interactive=entry.get("interactive", True), **entry.get("settings", {}))


def _limits(value: Any) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def _apply(session: Any, target: ArrayLabels, action: dict, build: Any) -> None:
    op = action.pop("op")
    if op == "predictor":
        session.set_predictor(build(action), info=action)
    elif op == "click":
        session.set_slice(action["key"])
        session.click(action["y"], action["x"], action["positive"])
    elif op == "slice":
        session.set_slice(action["key"])
    elif op in ("undo", "finish"):
        getattr(session, op)()
    elif op == "reset":
        session.reset()
    elif op == "refine":
        session.set_slice(action["key"])
        session.refine(action["label"])
    elif op == "threshold":
        session.set_threshold(action["value"])
    elif op == "overwrite":
        session.set_overwrite(action["value"])
    elif op == "contrast":
        session.set_contrast_limits(_limits(action["value"]))
    elif op == "propagate":
        session.set_slice(action["key"])
        prop = session.propagate(action["direction"])
        if prop is not None:
            for _, step in zip(range(action["steps"]), prop.steps()):
                session.apply_step(step)
            session.end_propagation(cancelled=action["cancelled"])
    elif op == "labels_undo":
        target.undo()
        session.labels_undone()
    elif op == "labels_redo":
        target.redo()
    else:
        raise ValueError(f"unknown action {op!r} in the record")
    session.run_pending()


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
