"""The widget's long tasks in napari's activity dock (bottom right of the viewer), beside the
widget's own busy bar: adapting the model, propagating through a stack, fitting the threshold.
Each gets a napari :class:`~napari.utils.progress` bar while it runs, advanced from the main
thread by the widget's progress reports and closed when the task ends.
"""
from __future__ import annotations

from napari.utils import progress

__all__ = ["LONG_TASKS", "Activity"]

#: the long tasks, by the widget's busy reason, as the activity dock names them
LONG_TASKS = {
    "adapt": "napari-ritm: adapting the model to your labels",
    "propagate": "napari-ritm: propagating through the stack",
    "threshold": "napari-ritm: fitting the threshold to your labels",
    "check": "napari-ritm: checking the labels",
}


class Activity:
    """The napari progress bars of the long tasks that run, by busy reason."""

    def __init__(self) -> None:
        self._bars: dict[str, progress] = {}

    def start(self, reason: str, total: int) -> None:
        """Show ``reason``'s bar (``total`` steps; 0 while unknown) if it is a long task."""
        if reason in LONG_TASKS and reason not in self._bars:
            self._bars[reason] = progress(total=total, desc=LONG_TASKS[reason])

    def update(self, reason: str, done: int, total: int | None = None) -> None:
        """Move ``reason``'s bar to ``done`` of ``total`` (total unchanged when None)."""
        bar = self._bars.get(reason)
        if bar is None:
            return
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    def stop(self, reason: str | None = None) -> None:
        """Close ``reason``'s bar, or every bar when None."""
        for key in [reason] if reason is not None else list(self._bars):
            bar = self._bars.pop(key, None)
            if bar is not None:
                bar.close()
