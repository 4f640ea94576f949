"""Keyboard shortcuts of the dock: defaults that leave napari's own keys alone, and user overrides.

napari holds Space to pan, uses the arrows and Alt/Ctrl+arrows for slices and layers, and gives
single letters to layer tools (E erases on a Labels layer, R draws rectangles on Shapes). The
defaults below use keys napari leaves free (Enter and Escape only matter to a Labels or Shapes
layer while it draws a polygon); they are bound on the viewer, so they work whichever
layer is selected unless that layer's own tool uses the same key.

Change them in a JSON file ``{"finish": "Enter", "refine": "Shift-R"}`` (napari key names, one
string or a list of strings per action) at :func:`keys_file`: ``$NAPARI_RITM_KEYS`` or
``keys.json`` in the per-user config folder (``~/.config/napari-ritm/keys.json`` on Linux).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["ACTIONS", "DEFAULT_KEYS", "KEYS_ENV", "key_text", "keys_file", "load_keys"]

KEYS_ENV = "NAPARI_RITM_KEYS"

#: action -> what it does (the README's table is this one)
ACTIONS = {
    "finish": "Finish the object: write it into the labels layer, start a new one",
    "undo": "Undo the last click (with none left: ask, then undo the last labels change)",
    "redo": "Redo the last labels change that Undo took back",
    "reset": "Reset the object in progress (nothing is written); stops a propagation",
    "refine": "Refine the label under the cursor",
    "propagate_up": "Propagate the object up the stack",
    "propagate_down": "Propagate the object down the stack",
    "whole_object": "Segment the whole object: finish it here and propagate it up and down",
    "split": "Split off the rest of a label being refined as a new label",
    "delete_label": "Delete the label under the cursor",
    "check_next": "Keep the label being checked and show the next one",
}

DEFAULT_KEYS: dict[str, list[str]] = {
    "finish": ["N", "Enter"],
    "undo": ["Control-Z"],
    "redo": ["Control-Shift-Z"],
    "reset": ["Escape"],
    "refine": ["Shift-E"],
    "propagate_up": ["PageUp"],
    "propagate_down": ["PageDown"],
    "whole_object": ["Shift-W"],
    "split": ["Shift-S"],
    "delete_label": ["Shift-D"],
    "check_next": ["Shift-N"],
}

_SHOWN = {"Control": "Ctrl", "PageUp": "Page Up", "PageDown": "Page Down"}


def keys_file() -> Path:
    """Where the user's shortcut overrides are read from."""
    override = os.environ.get(KEYS_ENV)
    if override:
        return Path(override)
    import platformdirs

    return platformdirs.user_config_path("napari-ritm") / "keys.json"


def load_keys(path: Path | None = None) -> tuple[dict[str, list[str]], str]:
    """(action -> napari key names, a note about the overrides: "" when none were read).

    Unknown actions and malformed entries in the file are skipped and named in the note; a
    file that is not JSON leaves the defaults and says so."""
    keys = {action: list(names) for action, names in DEFAULT_KEYS.items()}
    path = keys_file() if path is None else path
    if not path.is_file():
        return keys, ""
    try:
        chosen = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return keys, f"shortcuts file {path} not read ({err}); using the defaults"
    if not isinstance(chosen, dict):
        return keys, f"shortcuts file {path} must hold a JSON object; using the defaults"
    skipped = []
    for action, names in chosen.items():
        names = [names] if isinstance(names, str) else names
        if action not in ACTIONS or not isinstance(names, list) or not all(
            isinstance(n, str) and n for n in names
        ):
            skipped.append(str(action))
            continue
        keys[action] = names
    note = f"shortcuts from {path}"
    return keys, note + (f" (skipped: {', '.join(skipped)})" if skipped else "")


def key_text(action: str, keys: dict[str, list[str]] | None = None) -> str:
    """The first shortcut of ``action`` as shown to users, e.g. "Ctrl+Z" or "Page Up"."""
    names = (keys or DEFAULT_KEYS).get(action) or [""]
    return "+".join(_SHOWN.get(part, part) for part in names[0].split("-") if part)
