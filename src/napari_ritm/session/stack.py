"""One propagation through a stack as the session runs it: what it writes, and its report (no Qt).

:class:`PropagationRun` holds the propagation engine (:class:`~napari_ritm.session.propagation.
Propagation`) of one object and what happened to its steps: it writes each propagated plane into
the labels (one undo step per plane, the commit policy of :mod:`~napari_ritm.session.editing`)
and says how the propagation ended.
"""
from __future__ import annotations

from dataclasses import dataclass

from napari_ritm.inference.planes import slice_text
from napari_ritm.session.editing import LabelsLike, commit_plane, read_plane
from napari_ritm.session.propagation import Propagation, PropagationStep

__all__ = ["PropagationRun"]


@dataclass
class PropagationRun:
    """``propagation``: the engine; ``label``: the object's id; ``key``, ``direction``: where
    and which way it started; ``applied`` / ``written``: steps received / planes written."""

    propagation: Propagation
    label: int
    key: tuple[int, ...]
    direction: int
    applied: int = 0
    written: int = 0

    def apply(self, step: PropagationStep, labels: LabelsLike, *, overwrite: bool,
              labels_name: str) -> int | None:
        """Write ``step``'s plane (one ``data_setitem``): the number of pixels changed, or None
        when it was not written (a step of another or an ended propagation; the label has
        pixels there already; the labels cannot be written: the propagation ends then)."""
        prop = self.propagation
        if prop.cancelled or prop.finished or step.generation != prop.generation:
            return None
        self.applied += 1
        label = self.label
        if not overwrite and (read_plane(labels, step.key) == label).any():
            prop.finish(f"label {label} already has pixels on {slice_text(step.key)}: stopped "
                        "there without changing them (turn on Overwrite to replace them)")
            return None
        try:
            changed = commit_plane(labels, step.key, step.mask, label, overwrite=overwrite,
                                   layer_name=labels_name)
        except (ValueError, TypeError) as error:  # e.g. read-only labels data
            prop.finish(f"{slice_text(step.key)} not written: {error}")
            return None
        self.written += 1
        return changed

    def report(self, cancelled: bool) -> str:
        how = "stopped by you" if cancelled else self.propagation.stop_reason
        return f"Propagated label {self.label} to {self.written} slice(s); {how}"
