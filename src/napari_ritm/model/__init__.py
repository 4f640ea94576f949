"""The RITM network (HRNet-OCR + click maps) and its checkpoints.

``RITMNet``, ``RITMVariant`` and ``load_checkpoint`` are imported on first use, so that
``import napari_ritm.model.<submodule>`` pulls in torch only where that submodule needs it.
"""
from __future__ import annotations

__all__ = ["RITMNet", "RITMVariant", "load_checkpoint"]


def __getattr__(name: str):
    if name in ("RITMNet", "RITMVariant"):
        from napari_ritm.model import ritm_net

        return getattr(ritm_net, name)
    if name == "load_checkpoint":
        from napari_ritm.model.checkpoint import load_checkpoint

        return load_checkpoint
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
