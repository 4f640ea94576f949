"""The widgets' background work: one way to make a napari worker that runs the network, and
the timer that shows its progress from the main thread."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from napari.qt.threading import create_worker
from qtpy.QtCore import QObject, QTimer

from napari_ritm.inference.modes import with_interactive_threads

__all__ = ["network_worker", "progress_timer"]


def network_worker(function: Callable, *args: Any, returned: Callable | None = None,
                   yielded: Callable | None = None, errored: Callable | None = None,
                   finished: Callable | None = None, **kwargs: Any) -> Any:
    """A napari worker (not started) that runs ``function(*args, **kwargs)`` (a plain or a
    generator function; ``kwargs`` may hold napari's ``_progress``) with the interactive torch
    thread count set in its own thread, and hands its outcome to the slots given, errors
    included (to ``errored``, not raised into napari). Start it once the caller holds it:
    napari's progress bars handle pending events, which could deliver its end before."""
    worker = create_worker(with_interactive_threads(function), *args, _ignore_errors=True,
                           **kwargs)
    for signal, slot in (("returned", returned), ("yielded", yielded), ("errored", errored),
                         ("finished", finished)):
        if slot is not None:
            getattr(worker, signal).connect(slot)
    return worker


def progress_timer(parent: QObject, tick: Callable[[], None], interval_ms: int = 250) -> QTimer:
    """A started timer calling ``tick`` every ``interval_ms`` in the main thread: how a long
    task's progress, written by its worker, reaches the status line and the bars."""
    timer = QTimer(parent)
    timer.timeout.connect(tick)
    timer.start(interval_ms)
    return timer
