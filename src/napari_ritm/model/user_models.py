"""The user's own models (e.g. adapted to their labels), by name, in a per-user folder.

``$NAPARI_RITM_MODELS`` or ``models`` in the per-user data folder (``~/.local/share/napari-ritm/
models`` on Linux) holds ``<name>.pth`` (official checkpoint format) and ``<name>.json`` (its
model card). ``load_model(name)`` finds them by name after the registered models; the widget
lists them in its Model box.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

__all__ = ["MODELS_ENV", "model_card", "save_user_model", "unique_name", "user_model_path",
           "user_models", "user_models_dir"]

MODELS_ENV = "NAPARI_RITM_MODELS"


def user_models_dir() -> Path:
    """The folder of the user's models (not created here)."""
    override = os.environ.get(MODELS_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_data_path("napari-ritm") / "models"


def user_models() -> list[str]:
    """Names of the user's models, newest first."""
    folder = user_models_dir()
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.pth"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [p.stem for p in files]


def user_model_path(name: str) -> Path | None:
    """The checkpoint of the user's model ``name``, or None when there is none."""
    path = user_models_dir() / f"{name}.pth"
    return path if re.fullmatch(r"[\w.+-]+", name) and path.is_file() else None


def model_card(name: str) -> dict | None:
    """The model card saved with the user's model ``name`` (None without one)."""
    path = user_models_dir() / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def unique_name(base: str) -> str:
    """``base`` made safe for a file name, with -2, -3... when it is taken."""
    base = re.sub(r"[^\w.+-]+", "-", base).strip("-") or "model"
    name, k = base, 1
    while (user_models_dir() / f"{name}.pth").exists():
        k += 1
        name = f"{base}-{k}"
    return name


def save_user_model(net, name: str, card: dict) -> Path:
    """Save ``net`` as the user's model ``name`` with its ``card``; returns the checkpoint."""
    from napari_ritm.model.checkpoint import save_checkpoint

    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pth"
    save_checkpoint(net, path)
    (folder / f"{name}.json").write_text(json.dumps(card, indent=1) + "\n")
    return path
