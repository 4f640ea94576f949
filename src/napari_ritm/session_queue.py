"""The session's queue of user actions and predictor jobs (a mix-in of
:class:`napari_ritm.session.Session`, kept apart so that each file reads in one sitting).

Clicks, undos and finishes wait in a queue, in order; :meth:`PredictionQueue.pump` hands out
the next click's :class:`~napari_ritm.planes.PredictJob` (it may run in a worker thread) and
its outcome comes back through ``complete`` / ``fail``; ``run_pending`` does it all
synchronously (tests, scripts, replays).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from napari_ritm.inference.clicks import Click
from napari_ritm.planes import JobResult, PredictJob

__all__ = ["PredictionQueue"]


def _full(probs: Any) -> Any:
    """Probabilities as a full (H, W) array (a window predictor's LocalProbs pasted)."""
    return probs.full() if hasattr(probs, "full") else probs


@dataclass(frozen=True)
class _Step:
    """Undo record of one applied click: the state and probabilities before it."""

    state_before: Any
    probs_before: Any  # (H, W) float32 or LocalProbs
    state_owner_before: Any  # the predictor whose state ``state_before`` is


class PredictionQueue:
    """``pump`` / ``complete`` / ``fail`` / ``run_pending`` of the session."""

    def pump(self) -> PredictJob | None:
        """Run queued undos/finishes in order up to the next click; return that click's job.

        None when the queue is empty, a job is running, or no predictor is loaded yet.
        """
        if self._running is not None or self._propagation is not None:
            return None
        while self._queue:
            kind, click = self._queue[0]
            if kind == "click":
                if self.predictor is None:
                    return None
                self._queue.popleft()
                self._running = self._job_for(click)
                return self._running
            self._queue.popleft()
            if kind == "undo":
                self._undo_applied()
            else:
                self._finish_now()
        return None

    def complete(self, job: PredictJob, result: JobResult) -> None:
        """Apply a finished job's result (ignored when the session moved on meanwhile)."""
        if job is self._running:
            self._running = None
        if job.generation != self._generation:
            return
        cache_key = (job.key, job.source.contrast_limits)  # what the job normalised with
        self._plane_cache = (cache_key, result.plane)
        self._predictor_holds = (job.predictor, cache_key)
        self._steps.append(_Step(job.state, self._probs, self._state_owner))
        self._clicks.append(job.clicks[-1])
        self._probs, self._state = result.probs, result.state
        self._state_owner = job.predictor
        click = job.clicks[-1]
        self._log("click", key=list(job.key), y=click.y, x=click.x, positive=click.positive)

    def fail(self, job: PredictJob, error: BaseException) -> None:
        """A job raised: reset the object cleanly and tell the user why."""
        if job is self._running:
            self._running = None
        self._predictor_holds = None
        if job.generation == self._generation:
            self.reset(f"Prediction failed, object reset: {error}")

    def run_pending(self) -> None:
        """Run every queued operation synchronously in this thread."""
        while (job := self.pump()) is not None:
            try:
                result = job.run()
            except Exception as error:  # noqa: BLE001 - reported to the user, session reset
                self.fail(job, error)
            else:
                self.complete(job, result)

    def _job_for(self, click: Click) -> PredictJob:
        cache_key = (self._key, self.image.contrast_limits)
        cached = self._plane_cache
        plane = cached[1] if cached is not None and cached[0] == cache_key else None
        holds = self._predictor_holds
        needs_image = holds is None or holds[0] is not self.predictor or holds[1] != cache_key
        state, prev_mask = self._state, self._initial
        if state is not None and self._state_owner is not self.predictor:
            # another predictor (model or mode changed mid-object): it carries on from the
            # current mask, as when refining a label
            state, prev_mask = None, _full(self._probs)
        return PredictJob(
            predictor=self.predictor, source=self.image, key=self._key, plane=plane,
            needs_image=needs_image, state=state, clicks=(*self._clicks, click),
            prev_mask=prev_mask, generation=self._generation,
        )

    def _cancel_pending(self) -> int:
        """Drop queued operations and orphan the running job; the number of clicks dropped."""
        dropped = sum(kind == "click" for kind, _ in self._queue)
        self._queue.clear()
        if self._running is not None:
            dropped += 1
        self._generation += 1
        return dropped
