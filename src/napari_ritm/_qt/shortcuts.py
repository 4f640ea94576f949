"""The dock's keyboard shortcuts in napari: on the viewer, and on the session's own layers.

napari looks a key up in the selected layer's keymap before the viewer's, so keys bound on the
viewer (:data:`napari_ritm._qt.keys.DEFAULT_KEYS` or the user's ``keys.json``) lose against a Labels
layer's own Enter, Escape, Ctrl+Z and Ctrl+Shift+Z, and a Points layer's A, Delete, Backspace.
:class:`Shortcuts` therefore also binds them on the layers the session works with, while it
works with them:

- on the labels layer and the preview layer the dock's actions win, except where the layer's
  own meaning is what the user is doing: Enter and Escape while that layer draws a polygon,
  and Undo when no click is left to undo (then it is the labels layer's own undo, at once);
- on the clicks layer, whose points the dock draws, the keys that would select or delete them
  only say so.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from napari.layers import Labels
from napari.utils.key_bindings import coerce_keybinding

__all__ = ["CLICKS_LAYER_KEYS", "Shortcuts"]

#: Keys of napari's Points layer that select, add or delete points: blocked on the clicks layer.
CLICKS_LAYER_KEYS = ("A", "Shift-A", "Control-A", "Delete", "Backspace", "1", "2", "3", "P",
                     "S", "Control-C", "Control-V")


def _handler(function: Callable[[], Any]) -> Callable[[Any], None]:
    def handler(_owner: Any) -> None:
        function()

    return handler


class Shortcuts:
    """Binds ``keys`` (action -> napari key names) to ``actions`` (action -> callable) on
    ``viewer`` now, and on a session's layers between :meth:`attach` and :meth:`detach`.

    ``actions`` needs every action of ``keys`` plus ``"labels_undo"`` (the labels layer's own
    undo, for Undo with no click left) and ``"clicks_edit"`` (what a blocked key on the clicks
    layer does); ``has_clicks()`` says whether Undo still has a click to undo.
    """

    def __init__(self, viewer: Any, keys: dict[str, list[str]],
                 actions: dict[str, Callable[[], Any]], has_clicks: Callable[[], bool]) -> None:
        self.viewer, self.keys, self.actions, self.has_clicks = viewer, keys, actions, has_clicks
        self._layers: list[tuple[Any, list[str]]] = []
        for action, names in keys.items():
            for name in names:
                viewer.bind_key(name, _handler(actions[action]), overwrite=True)

    def attach(self, labels: Any, preview: Any, clicks: Any) -> None:
        """Bind the keys on the session's ``labels``, ``preview`` and ``clicks`` layers."""
        self.detach()
        for layer in (labels, preview):
            names = []
            for action, keys in self.keys.items():
                for name in keys:
                    layer.bind_key(name, self._on_labels(layer, action, name), overwrite=True)
                    names.append(name)
            self._layers.append((layer, names))
        mine = {name for keys in self.keys.values() for name in keys}
        blocked = [name for name in CLICKS_LAYER_KEYS if name not in mine]
        for name in blocked:
            clicks.bind_key(name, _handler(self.actions["clicks_edit"]), overwrite=True)
        self._layers.append((clicks, blocked))

    def detach(self) -> None:
        """Give the layers back their own keys."""
        for layer, names in self._layers:
            for name in names:
                layer.bind_key(name, None, overwrite=True)
        self._layers = []

    def close(self) -> None:
        """Unbind everything (the dock is closing)."""
        self.detach()
        for names in self.keys.values():
            for name in names:
                self.viewer.bind_key(name, None, overwrite=True)

    def _on_labels(self, layer: Any, action: str, name: str) -> Callable[[Any], None]:
        own = Labels.class_keymap.get(coerce_keybinding(name))

        def handler(_layer: Any) -> None:
            if own is not None and str(getattr(layer, "mode", "")) == "polygon":
                pressed = own(layer)  # completing or resetting the polygon the user draws
                if inspect.isgenerator(pressed):  # a press-and-release binding: its press part
                    next(pressed, None)
            elif action == "undo" and not self.has_clicks() and layer.editable:
                self.actions["labels_undo"]()
            else:
                self.actions[action]()

        return handler
