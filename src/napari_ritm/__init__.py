"""napari-ritm: click-based interactive segmentation for napari (RITM).

``import napari_ritm`` stays light (napari imports it to read the plugin manifest); the public
API below is imported on first use so that torch loads only when a model is needed.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "load_model"]


def __getattr__(name: str):
    if name == "load_model":
        from napari_ritm.model.zoo import load_model

        return load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
