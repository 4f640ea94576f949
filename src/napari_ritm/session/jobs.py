"""One predictor call for the newest click, built by the session, run anywhere (no Qt).

:class:`PredictJob` touches only the predictor and the image, never the labels, so the widget
runs it in a worker thread while the session keeps the queue; its :class:`JobResult` goes back to
:meth:`napari_ritm.session.session.Session.complete`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from napari_ritm.inference.base import ClickPredictor, LocalProbs
from napari_ritm.inference.clicks import Click
from napari_ritm.inference.planes import ImageSource, PlaneWindows

__all__ = ["JobResult", "PredictJob"]


@dataclass(frozen=True)
class JobResult:
    """What :meth:`PredictJob.run` returns: the probabilities, the predictor's state after the
    call, and the plane reader it used."""

    probs: LocalProbs
    state: Any
    plane: PlaneWindows


@dataclass(frozen=True)
class PredictJob:
    """One predictor call for the newest click.

    ``run()`` sets the image when needed (``needs_image``), restores the state after the previous
    click (``state`` None: a new object), and predicts with all ``clicks`` (``prev_mask``: the
    mask to refine, while the object has no prediction of its own).
    """

    predictor: ClickPredictor
    source: ImageSource
    key: tuple[int, ...]
    plane: PlaneWindows | None  # the plane's reader if cached, else made in run()
    needs_image: bool
    state: Any
    clicks: tuple[Click, ...]
    prev_mask: LocalProbs | None
    generation: int

    def run(self) -> JobResult:
        plane = self.source.windows(self.key) if self.plane is None else self.plane
        if self.needs_image:
            self.predictor.set_image(plane)
        if self.state is None:
            self.predictor.reset()
        else:
            self.predictor.set_state(self.state)
        probs = self.predictor.predict_local(self.clicks, prev_mask=self.prev_mask)
        return JobResult(probs, self.predictor.get_state(), plane)
