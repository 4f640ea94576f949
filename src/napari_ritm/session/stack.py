"""Propagation through a stack as the session runs it: what it writes, and its report (no Qt).

:class:`PropagationRun` runs one object's propagation in one or both directions (one
:class:`~napari_ritm.session.propagation.Propagation` engine each, one after the other) and
writes the planes they yield into the labels with the commit policy of
:mod:`~napari_ritm.session.editing`: one undo step per plane, or, for a correction
(``one_step``), every plane at the end in one write, so that one undo takes the whole
correction back. :class:`StackObjects` remembers, per object, the planes the user segmented
(anchors) and those propagation wrote: a click on a propagated plane corrects it, and the
object is then propagated again from there up to the next anchor. :class:`StackPropagation`
is the session's side of it: what Propagate, the whole object and a correction start, and how
their planes are written and reported.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from napari_ritm.inference.planes import slice_text
from napari_ritm.session.current import CurrentObject
from napari_ritm.session.editing import (
    LabelsLike,
    check_label_fits,
    commit_plane,
    plan_commit,
    read_plane,
)
from napari_ritm.session.propagation import STOP_RULE, Propagation, PropagationStep

__all__ = ["PropagationRun", "StackObjects", "StackPropagation"]

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


class StackPropagation:
    """Propagation through the stack of ``session`` (a
    :class:`~napari_ritm.session.session.Session`, which owns one as ``session.stacks``).

    ``run``: the :class:`PropagationRun` in progress or None; ``objects``: the
    :class:`StackObjects`; ``guide``: how a plane's mask guides the next (one of
    :data:`~napari_ritm.session.propagation.GUIDES`); ``stop_rule``: where propagation decides
    an object has ended (a name of :data:`~napari_ritm.session.propagation.STOP_RULES`).
    """

    def __init__(self, session: Any) -> None:  # (a Session: session.py imports this module)
        self.session = session
        self.run: PropagationRun | None = None
        self.objects = StackObjects()
        self.guide = "click"
        self.stop_rule = STOP_RULE
        self._corrected: tuple[int, Key] | None = None  # a propagated plane the user fixed
        self._generation = 0  # numbers each engine, so late steps of an old one are ignored

    def propagate(self, direction: int) -> PropagationRun | None:
        """Carry the object to the next planes along the last stack axis (``direction`` +1/-1).

        The object is the current one (its preview here is committed first) or, when none is in
        progress, the one finished last. Returns a :class:`PropagationRun` whose ``steps()``
        the caller runs (a worker thread may), passing each step to :meth:`apply_step` and
        finally calling :meth:`end`; None (with a message) when there is nothing to carry.
        Each plane is one undo step.
        """
        return self._start((direction,), "propagate")

    def propagate_both(self) -> PropagationRun | None:
        """The whole object: commit it on this plane and propagate it up, then down."""
        return self._start((1, -1), "whole")

    def corrected(self, label: int, key: Key) -> None:
        """The user finished a correction of propagated object ``label`` on plane ``key``."""
        self._corrected = (label, key)

    @property
    def wants_repropagation(self) -> bool:
        """The user corrected a propagated plane: :meth:`repropagate` carries the correction."""
        return self._corrected is not None and not self.session.busy

    def repropagate(self) -> PropagationRun | None:
        """Propagate the corrected object again from the plane the user fixed, both ways, up to
        the next plane the user segmented (or the object's end), replacing its propagated
        pixels; all of it is one undo step (written at :meth:`end`)."""
        if self._corrected is None:
            return None
        label, key = self._corrected
        self._corrected = None
        if key != self.session.key:
            return None
        return self._start((1, -1), "correction", label=label)

    def apply_step(self, step: PropagationStep) -> None:
        """Write one propagated plane (one undo step in the labels layer; a correction keeps it
        for the end). The user may change slices meanwhile; steps of a cancelled or finished
        propagation are ignored."""
        session, run = self.session, self.run
        if run is None:
            return
        if run.apply(step, session.labels, overwrite=session.overwrite,
                     labels_name=session.labels_name):  # one undo step, like a commit
            session.note_write(run.label, step.key)
            self.objects.written(run.label, step.key)

    def end(self, *, cancelled: bool = False) -> None:
        """The propagation ended (finished, stopped or failed): report it and accept clicks."""
        session, (run, self.run) = self.session, (self.run, None)
        if run is None or (run.cancelled and not cancelled):  # reset: reported already
            return
        extra = ""
        if run.one_step and not cancelled:
            changed = run.flush(session.labels, overwrite=session.overwrite,
                                labels_name=session.labels_name)
            for key in changed:
                self.objects.written(run.label, key)
            if changed:
                session.note_write(run.label, run.key)
                extra = "; changed " + ", ".join(slice_text(k) for k in sorted(changed))
        session.log("propagate", key=list(run.key), kind=run.kind,
                    directions=[p.direction for p in run.propagations], steps=run.applied,
                    cancelled=cancelled)
        session.current = CurrentObject()  # the propagated object is done: a click starts another
        session.tell(run.report(cancelled) + extra)

    def _start(self, directions: tuple[int, ...], kind: str,
               label: int | None = None) -> PropagationRun | None:
        session = self.session
        key = session.key
        if not key:
            session.tell("Propagate needs a stack (3D or time series)")
            return None
        if session.busy:
            session.tell("Wait for the running prediction before propagating")
            return None
        if session.predictor is None:
            session.tell("No model loaded yet")
            return None
        if session.current.clicks and not session.commit_preview():
            return None
        if label is None:
            label = session.current.object_id
            label = label if label is not None else session.last_committed
        if label is None:
            session.tell("Nothing to propagate: segment an object (or refine a label) first")
            return None
        start = read_plane(session.labels, key) == label
        if not start.any():
            session.tell(f"Label {label} has no pixels on this slice: nothing to propagate")
            return None
        session.continue_object(label)
        session.predictor_image_changed()
        stop_at = self.objects.anchors_except(label, key) if kind == "correction" else ()
        engines = []
        for direction in directions:
            self._generation += 1
            engines.append(Propagation(
                session.predictor, session.image, key, start, direction,
                threshold=session.threshold, stop_rule=self.stop_rule, guide=self.guide,
                stop_at=frozenset(stop_at), generation=self._generation))
        self.run = PropagationRun(engines, label, key, one_step=kind == "correction",
                                  kind=kind)
        return self.run
