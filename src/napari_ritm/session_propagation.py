"""Propagation through a stack, as session actions (a mix-in of
:class:`napari_ritm.session.Session`, kept apart so that each file reads in one sitting)."""
from __future__ import annotations

from napari_ritm.editing import commit_plane, read_plane
from napari_ritm.planes import slice_text
from napari_ritm.propagation import Propagation, PropagationStep

__all__ = ["PropagationActions"]


class PropagationActions:
    """``propagate`` / ``apply_step`` / ``end_propagation`` of the session."""

    def propagate(self, direction: int) -> Propagation | None:
        """Carry the object to the next planes along the last stack axis (``direction`` +1/-1).

        The object is the current one (its preview here is committed first) or, when none is in
        progress, the one finished last. Returns a :class:`Propagation` whose ``steps()`` the
        caller runs (a worker thread may), passing each step to :meth:`apply_step` and finally
        calling :meth:`end_propagation`; None (with a message) when there is nothing to carry.
        """
        if not self._key:
            self._say("Propagate needs a stack (3D or time series)")
            return None
        if self.busy:
            self._say("Wait for the running prediction before propagating")
            return None
        if self.predictor is None:
            self._say("No model loaded yet")
            return None
        if self._clicks and not self._commit_here():
            return None
        label = self._object_id if self._object_id is not None else self.last_committed
        if label is None:
            self._say("Nothing to propagate: segment an object (or refine a label) first")
            return None
        start = read_plane(self.labels, self._key) == label
        if not start.any():
            self._say(f"Label {label} has no pixels on this slice: nothing to propagate")
            return None
        self._start_object(label)
        self._predictor_holds = None
        self._propagations += 1
        self._propagation_written = self._propagation_applied = 0
        self._propagation_start = (self._key, direction)
        self._propagated_label = label
        self._propagation = Propagation(
            self.predictor, self.image, self._key, start, direction,
            threshold=self.threshold, generation=self._propagations,
        )
        return self._propagation

    def apply_step(self, step: PropagationStep) -> None:
        """Write one propagated plane (one undo step in the labels layer). The user may change
        slices meanwhile; steps of a cancelled or finished propagation are ignored."""
        prop = self._propagation
        if prop is None or prop.cancelled or prop.finished or step.generation != prop.generation:
            return
        self._propagation_applied += 1
        label = self._propagated_label
        if not self.overwrite and (read_plane(self.labels, step.key) == label).any():
            prop.finish(f"label {label} already has pixels on {slice_text(step.key)}: stopped there "
                        "without changing them (turn on Overwrite to replace them)")
            return
        try:
            changed = commit_plane(self.labels, step.key, step.mask, self._propagated_label,
                                   overwrite=self.overwrite, layer_name=self.labels_name)
        except (ValueError, TypeError) as error:  # e.g. read-only labels data
            prop.finish(f"{slice_text(step.key)} not written: {error}")
            return
        self._propagation_written += 1
        if changed:  # one undo step of the labels layer, like a commit
            self._changed(label, step.key)

    def end_propagation(self, *, cancelled: bool = False) -> None:
        """The propagation ended (finished, stopped or failed): report it and accept clicks."""
        prop, self._propagation = self._propagation, None
        if prop is None or (prop.cancelled and not cancelled):  # reset: already reported
            return
        key, direction = self._propagation_start
        self._log("propagate", key=list(key), direction=direction,
                  steps=self._propagation_applied, cancelled=cancelled)
        how = "stopped by you" if cancelled else prop.stop_reason
        # the propagated object is done: the next click starts a new object
        self._end_object()
        self._say(f"Propagated label {self._propagated_label} to {self._propagation_written} "
                  f"slice(s); {how}")
