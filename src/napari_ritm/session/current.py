"""The object being segmented on the plane in view, and the undo records of its clicks (no Qt).

:class:`CurrentObject` is owned by the :class:`~napari_ritm.session.session.Session`: its label
id (None for a new object until its first commit), the mask it started from (a label being
refined, or the object's pixels on a new slice), the clicks applied so far with, for each, what
undoing it restores, and the latest probabilities with the predictor state that produced them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_ritm.inference.base import ClickPredictor, LocalProbs
from napari_ritm.inference.clicks import Click

__all__ = ["CurrentObject"]


@dataclass(frozen=True)
class _Step:
    """Undo record of one applied click: the state and probabilities before it."""

    state_before: Any
    probs_before: LocalProbs | None
    owner_before: ClickPredictor | None  # the predictor whose state ``state_before`` is


class CurrentObject:
    """``object_id`` (int or None), ``initial`` (LocalProbs or None: the mask to refine),
    ``clicks`` (applied, oldest first), ``probs`` (LocalProbs of the latest prediction or None),
    ``state`` and ``owner`` (the predictor state after the latest prediction, and that
    predictor); ``correcting``: the plane was written by propagation and the user fixes it."""

    def __init__(self, object_id: int | None = None, initial: LocalProbs | None = None) -> None:
        self.object_id = object_id
        self.initial = initial
        self.clicks: list[Click] = []
        self.probs: LocalProbs | None = None
        self.state: Any = None
        self.owner: ClickPredictor | None = None
        self.correcting = False  # the object is a propagated plane the user is fixing
        self._steps: list[_Step] = []

    def apply(self, click: Click, probs: LocalProbs, state: Any,
              predictor: ClickPredictor) -> None:
        """A prediction for ``click`` came back: keep it, with what undoing it restores."""
        self._steps.append(_Step(self.state, self.probs, self.owner))
        self.clicks.append(click)
        self.probs, self.state, self.owner = probs, state, predictor

    def undo(self) -> bool:
        """Take back the newest applied click; False when there is none."""
        if not self._steps:
            return False
        step = self._steps.pop()
        self.clicks.pop()
        self.probs, self.state, self.owner = step.probs_before, step.state_before, step.owner_before
        return True

    def start_for(self, predictor: ClickPredictor) -> tuple[Any, LocalProbs | None]:
        """(state, previous mask) the next click's prediction starts from with ``predictor``:
        its own state, or, when another predictor made the latest prediction (the model or mode
        changed mid-object), none and that prediction as the mask to carry on from."""
        if self.state is not None and self.owner is not predictor:
            return None, self.probs
        return self.state, self.initial

    def window(self, threshold: float) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """The object's mask inside the window that holds it: (row and column slices of the
        plane, (h, w) bool); the mask it started from before any click; None without either."""
        if self.probs is not None:
            return self.probs.slices, self.probs.probs > threshold
        if self.initial is not None:
            return self.initial.slices, self.initial.probs > 0.5
        return None
