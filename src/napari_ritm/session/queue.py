"""The session's queue of user actions waiting for the predictor (no Qt).

Clicks, undos and finishes wait in an :class:`ActionQueue`, in order, while a prediction runs (it
may run in a worker thread); the session takes them one by one
(:meth:`napari_ritm.session.session.Session.pump`). A change of slice, image or object cancels
what waits: the running job's result is then ignored (its ``generation`` is old).
"""
from __future__ import annotations

from collections import deque

from napari_ritm.inference.clicks import Click
from napari_ritm.session.jobs import PredictJob

__all__ = ["ActionQueue"]


class ActionQueue:
    """``pending``: (kind, click) with kind "click", "undo" or "finish"; ``running``: the job
    handed out and not yet back; ``generation``: numbers the object, so that a job of a
    cancelled one is recognised."""

    def __init__(self) -> None:
        self.pending: deque[tuple[str, Click | None]] = deque()
        self.running: PredictJob | None = None
        self.generation = 0

    def __bool__(self) -> bool:
        """Whether anything waits or runs."""
        return self.running is not None or bool(self.pending)

    @property
    def clicks(self) -> tuple[Click, ...]:
        """The running job's click and the clicks waiting, in order."""
        running = self.running.clicks[-1:] if self.running is not None else ()
        return (*running, *(c for kind, c in self.pending if kind == "click"))

    def add(self, kind: str, click: Click | None = None) -> None:
        self.pending.append((kind, click))

    def drop_last_click(self) -> bool:
        """Drop the newest action when it is a click still waiting; whether it was."""
        if self.pending and self.pending[-1][0] == "click":
            self.pending.pop()
            return True
        return False

    def done(self, job: PredictJob) -> bool:
        """``job`` came back; whether its result belongs to the object in progress."""
        if job is self.running:
            self.running = None
        return job.generation == self.generation

    def cancel(self) -> int:
        """Drop what waits and orphan the running job; the number of clicks dropped."""
        dropped = sum(kind == "click" for kind, _ in self.pending) + (self.running is not None)
        self.pending.clear()
        self.generation += 1
        return dropped
