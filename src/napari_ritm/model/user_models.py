"""The user's own models (e.g. adapted to their labels), by name, in a per-user folder.

``$NAPARI_RITM_MODELS`` or ``models`` in the per-user data folder (``~/.local/share/napari-ritm/
models`` on Linux) holds ``<name>.pth`` (official checkpoint format) and ``<name>.json`` (its
model card). ``load_model(name)`` finds them by name after the registered models; the widget
lists them in its Model box. A card may record the threshold fitted to the user's labels with
the model (:func:`record_threshold`); the widget and ``napari-ritm predict`` use it. A threshold
fitted with a registered model (``default``, the official ones) is kept in a card of its own in
``registered/<name>.json`` there, with the SHA-256 of the weights it was fitted with: it is
used while the model's file stays the same (a new release of ``default`` starts at 0.49 again).
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from napari_ritm.model.user_folder import MODELS_ENV, user_model_path, user_models, user_models_dir
from napari_ritm.model.zoo import REGISTRY, model_file_hash

__all__ = ["MODELS_ENV", "can_record_threshold", "card_file", "model_card",
           "record_threshold", "recorded_threshold", "save_user_model", "unique_name",
           "user_model_path", "user_models", "user_models_dir"]

def model_card(name: str) -> dict | None:
    """The model card saved with the user's model ``name`` (None without one)."""
    return _read_card(user_models_dir() / f"{name}.json")


def _read_card(path: Path | None) -> dict | None:
    try:
        card = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def unique_name(base: str) -> str:
    """``base`` made safe for a file name, with -2, -3... when it is taken (by one of the
    user's models, or by a registered model, whose name ``load_model`` would find first)."""
    base = re.sub(r"[^\w.+-]+", "-", base).strip("-") or "model"
    name, k = base, 1
    while _registered(name) or (user_models_dir() / f"{name}.pth").exists():
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


def _registered(source: str | os.PathLike) -> bool:
    return isinstance(source, str) and source in REGISTRY


def card_file(source: str | os.PathLike) -> Path | None:
    """Where the model card of ``source`` (as ``load_model`` takes it) is or would be: a user
    model's ``<name>.json``, ``<file>.json`` beside a ``.pth`` file (``napari-ritm finetune
    --out`` writes one there), ``registered/<name>.json`` in the user's model folder for a
    registered model (it keeps only the fitted threshold); None for other sources."""
    if _registered(source):
        return user_models_dir() / "registered" / f"{source}.json"
    if isinstance(source, str) and user_model_path(source) is not None:
        return user_models_dir() / f"{source}.json"
    path = Path(source)
    return path.with_suffix(".json") if path.suffix == ".pth" else None


def _own_card(source: str | os.PathLike) -> tuple[Path, dict] | None:
    """The card of ``source`` and its path when it is one this plugin wrote (it names the
    model it came from), None otherwise: a stray ``.json`` beside a ``.pth`` is not a card."""
    path = card_file(source)
    card = _read_card(path)
    return (path, card) if card is not None and "source_model" in card else None


def can_record_threshold(source: str | os.PathLike) -> bool:
    """Whether a threshold fitted with ``source`` can be kept for it: a registered model, or
    one with a model card (the user's own, a ``.pth`` with the card ``finetune --out`` wrote)."""
    return _registered(source) or _own_card(source) is not None


def recorded_threshold(source: str | os.PathLike, sha256: str | None = None) -> float | None:
    """The threshold fitted to the user's labels that is kept for ``source`` (None without
    one). A registered model's counts only while its file is the one it was fitted with:
    ``sha256``, that file's SHA-256 when the caller knows it (else it is computed)."""
    if _registered(source):
        card = _read_card(card_file(source)) or {}
        if not card.get("sha256") or card["sha256"] != (sha256 or model_file_hash(source)):
            return None
    else:
        card = (_own_card(source) or (None, {}))[1]
    value = card.get("threshold")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return None


def record_threshold(source: str | os.PathLike, fit, predictor: dict | None = None,
                     sha256: str | None = None) -> Path | None:
    """Keep ``fit`` (a :class:`napari_ritm.evaluation.threshold.ThresholdFit`) for ``source``:
    its ``threshold`` and how it was found (``predictor``: the mode and settings it predicted
    with, e.g. ``{"mode": "window", "flip": True}``), in the model card. A registered model
    gets a card of its own with the SHA-256 of its file (:func:`card_file`; ``sha256`` when
    the caller knows it, else it is computed); another model only when it has a card. Returns
    the card's path, or None when there is no card to write (nor a file of the registered
    model to fit with). Raises OSError when the card cannot be written."""
    if _registered(source):
        digest = sha256 or model_file_hash(source)
        if digest is None:
            return None
        path, card = card_file(source), {"registered_model": source, "sha256": digest}
        path.parent.mkdir(parents=True, exist_ok=True)
    elif (own := _own_card(source)) is not None:
        path, card = own
    else:
        return None
    card["threshold"] = fit.threshold
    card["threshold_fit"] = {"objects": fit.objects, "iou": round(fit.iou, 4),
                             "previous": fit.current, "iou_previous": round(fit.iou_current, 4),
                             **({"predictor": predictor} if predictor else {}),
                             "date": time.strftime("%Y-%m-%d %H:%M")}
    path.write_text(json.dumps(card, indent=1) + "\n")
    return path
