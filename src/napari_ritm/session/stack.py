"""Propagation through a stack as the session runs it: what it writes, and its report (no Qt).

:class:`PropagationRun` runs one object's propagation in one or both directions (one
:class:`~napari_ritm.session.propagation.Propagation` engine each, one after the other) and
writes the planes they yield into the labels with the commit policy of
:mod:`~napari_ritm.session.editing`: one undo step per plane, or, for a correction
(``one_step``), every plane at the end in one write, so that one undo takes the whole
correction back. :class:`StackObjects` remembers, per object, the planes the user segmented
(anchors) and those propagation wrote: a click on a propagated plane corrects it, and the
object is then propagated again from there up to the next anchor.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from napari_ritm.inference.planes import slice_text
from napari_ritm.session.editing import (
    LabelsLike,
    check_label_fits,
    commit_plane,
    plan_commit,
    read_plane,
)
from napari_ritm.session.propagation import Propagation, PropagationStep

__all__ = ["PropagationRun", "StackObjects"]

Key = tuple[int, ...]


class StackObjects:
    """Per object id: ``anchors`` (planes the user segmented with clicks) and ``propagated``
    (planes written by propagation since); ``last``: the object propagated last, until the
    user segments another (a click on its propagated planes corrects it)."""

    def __init__(self) -> None:
        self.anchors: dict[int, set[Key]] = {}
        self.propagated: dict[int, set[Key]] = {}
        self.last: int | None = None  # the object propagated last, until another is segmented

    def segmented(self, label: int, key: Key) -> None:
        self.anchors.setdefault(label, set()).add(key)
        self.propagated.get(label, set()).discard(key)
        if label != self.last:
            self.last = None

    def written(self, label: int, key: Key) -> None:
        self.propagated.setdefault(label, set()).add(key)
        self.last = label

    def is_propagated(self, label: int, key: Key) -> bool:
        return key in self.propagated.get(label, ())

    def anchors_except(self, label: int, key: Key) -> frozenset:
        return frozenset(self.anchors.get(label, set()) - {key})


@dataclass
class PropagationRun:
    """``propagations``: the engines, run in turn (each with a generation of its own);
    ``label``: the object's id; ``key``: where it started; ``one_step``: write every plane at
    the end in one write (a correction; the planes of the label may be replaced up to the next
    anchor) instead of one write per plane;
    ``kind``: "propagate", "whole" (the whole object) or "correction", for the record.
    ``applied`` / ``written``: steps received / planes written, per engine."""

    propagations: list[Propagation]
    label: int
    key: Key
    one_step: bool = False
    kind: str = "propagate"
    applied: list[int] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    _pending: list[PropagationStep] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.applied = [0] * len(self.propagations)
        self.written = [0] * len(self.propagations)

    @property
    def total(self) -> int:
        return sum(p.total for p in self.propagations)

    @property
    def cancelled(self) -> bool:
        return any(p.cancelled for p in self.propagations)

    def cancel(self) -> None:
        for p in self.propagations:
            p.cancel()

    def steps(self) -> Iterator[PropagationStep]:
        """Every engine's steps, one engine after the other (a worker thread may run this);
        ``done`` counts across the engines."""
        offset = 0
        for p in self.propagations:
            if p.cancelled:
                return
            for step in p.steps():
                yield replace(step, done=offset + step.done, total=self.total)
            offset += p.total

    def apply(self, step: PropagationStep, labels: LabelsLike, *, overwrite: bool,
              labels_name: str) -> int | None:
        """Write ``step``'s plane (one ``data_setitem``; with ``one_step`` keep it for
        :meth:`flush`): the number of pixels changed, or None when it was not written (a step of
        an ended engine; the label has pixels there already, outside a correction; the labels
        cannot be written: that engine ends then)."""
        index = next((i for i, p in enumerate(self.propagations)
                      if p.generation == step.generation), None)
        if index is None:
            return None
        prop = self.propagations[index]
        if prop.cancelled or prop.finished:
            return None
        self.applied[index] += 1
        if self.one_step:
            self._pending.append(step)
            self.written[index] += 1
            return None
        if not overwrite and (read_plane(labels, step.key) == self.label).any():
            prop.finish(f"label {self.label} already has pixels on {slice_text(step.key)}: "
                        "stopped there without changing them (turn on Overwrite to replace "
                        "them)")
            return None
        try:
            changed = commit_plane(labels, step.key, step.mask, self.label, overwrite=overwrite,
                                   layer_name=labels_name)
        except (ValueError, TypeError) as error:  # e.g. read-only labels data
            prop.finish(f"{slice_text(step.key)} not written: {error}")
            return None
        self.written[index] += 1
        return changed

    def flush(self, labels: LabelsLike, *, overwrite: bool, labels_name: str) -> list[Key]:
        """Write the planes kept by a ``one_step`` run, all in one ``data_setitem``: the label
        covers each plane's mask (its other pixels there become background; other labels stay
        unless ``overwrite``). Returns the planes that changed."""
        check_label_fits(self.label, labels.data.dtype, layer_name=labels_name)
        parts, changed = [], []
        for step in self._pending:
            current = read_plane(labels, step.key)
            rows, cols, values = plan_commit(current, step.mask, self.label,
                                             overwrite=overwrite)
            if rows.size:
                lead = tuple(np.full(rows.size, k, np.intp) for k in step.key)
                parts.append(((*lead, rows, cols), values))
                changed.append(step.key)
        self._pending = []
        if parts:
            index = tuple(np.concatenate([p[0][d] for p in parts])
                          for d in range(len(parts[0][0])))
            labels.data_setitem(index, np.concatenate([p[1] for p in parts]))
        return changed

    def report(self, cancelled: bool) -> str:
        if len(self.propagations) == 1:
            how = "stopped by you" if cancelled else self.propagations[0].stop_reason
            return f"Propagated label {self.label} to {self.written[0]} slice(s); {how}"
        parts = []
        for prop, written in zip(self.propagations, self.written):
            way = "up" if prop.direction > 0 else "down"
            how = "stopped by you" if cancelled else prop.stop_reason
            parts.append(f"{written} slice(s) {way} ({how})")
        return f"Propagated label {self.label}: " + "; ".join(parts)
