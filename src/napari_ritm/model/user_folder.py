"""Where the user's own models live (no imports of the model code: the registry reads it).

``$NAPARI_RITM_MODELS`` or ``models`` in the per-user data folder (``~/.local/share/napari-ritm/
models`` on Linux) holds ``<name>.pth`` and its card ``<name>.json``
(:mod:`napari_ritm.model.user_models`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["MODELS_ENV", "user_model_path", "user_models", "user_models_dir"]

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
