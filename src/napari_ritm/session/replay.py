"""Replaying a session's record: the same actions on the same image give the same labels.

Replay on the same machine with the same model and torch thread count gives the same labels bit
for bit; on another CPU floating-point rounding may move a few pixels where the probability is
within ~1e-5 of the threshold. The record keeps a fingerprint of the labels it ended with, and
:func:`replay` says whether it got there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_ritm.inference.planes import ImageSource
from napari_ritm.session.proofread import Proofreading
from napari_ritm.session.record import ArrayLabels, Record, fingerprint
from napari_ritm.session.session import Session

__all__ = ["ReplayResult", "predictor_from_entry", "replay"]


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
    settings = dict(entry.get("settings", {}))
    if entry["mode"] == "window":  # records from before these settings (2026-12-07) had none
        settings.setdefault("second_look", 0)
        settings.setdefault("local_corrections", False)
    return make_predictor(load_model(entry["model"]), entry["mode"],
                          interactive=entry.get("interactive", True), **settings)


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
        kind = action.get("kind", "propagate")
        if kind == "whole":
            run = session.stacks.propagate_both()
        elif kind == "correction":
            run = session.stacks.repropagate()
        else:
            first = (action.get("directions") or [1])[0]
            run = session.stacks.propagate(action.get("direction", first))
        if run is not None:
            counts = action["steps"] if isinstance(action["steps"], list) else [action["steps"]]
            done = dict.fromkeys(range(len(run.propagations)), 0)
            for step in run.steps():
                index = next(i for i, p in enumerate(run.propagations)
                             if p.generation == step.generation)
                if done[index] >= counts[index]:
                    run.propagations[index].finish("as recorded")
                    continue
                done[index] += 1
                session.stacks.apply_step(step)
            session.stacks.end(cancelled=action["cancelled"])
    elif op in ("split", "merge", "delete"):
        if op == "split":
            session.set_slice(action["key"])
        proofreading = Proofreading(session)
        {"split": lambda: proofreading.split(),
         "merge": lambda: proofreading.merge(action["a"], action["b"]),
         "delete": lambda: proofreading.delete(action["label"])}[op]()
    elif op == "labels_undo":
        target.undo()
        session.labels_undone()
    elif op == "labels_redo":
        target.redo()
    else:
        raise ValueError(f"unknown action {op!r} in the record")
    session.run_pending()
