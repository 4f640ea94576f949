"""Clicks -> masks: clicks, test-time transforms, the predictor and image normalisation.

``Click``, ``ClickList`` and ``normalize_image`` need only numpy; ``Predictor`` (torch) is
imported on first use so that importing this package stays light.
"""
from __future__ import annotations

from napari_ritm.inference.clicks import Click, ClickList
from napari_ritm.inference.normalize import normalize_image

__all__ = ["Click", "ClickList", "Predictor", "normalize_image"]


def __getattr__(name: str):
    if name == "Predictor":
        from napari_ritm.inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
