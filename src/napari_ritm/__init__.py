"""napari-ritm: click-based interactive segmentation for napari (RITM).

The Python API, in the spirit of segment-anything's::

    from napari_ritm import load_model, make_predictor, Click, Session, fit_threshold

    predictor = make_predictor(load_model("default"))      # the window mode, as the widget
    predictor.set_image(image)                              # (H, W[, 3]) uint8 or [0, 1] float
    probs = predictor.predict([Click(120, 88, True)])       # (H, W) probabilities
    session = Session(image, labels, predictor=predictor)   # labels: a numpy array, edited in place
    session.click(120, 88, positive=True); session.finish(); session.run_pending()

    # the threshold at which masks match your outlines: one click on each object of `mine`,
    # with a predictor of its own (the session's keeps its image)
    from napari_ritm.training.data import samples_from_arrays
    fit = fit_threshold(make_predictor(load_model("default")), samples_from_arrays(image, mine))
    session.set_threshold(fit.threshold)

``import napari_ritm`` stays light (napari imports it to read the plugin manifest): each name is
imported on first use, so torch loads only when a model is needed.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> module that defines it
_API = {
    "load_model": "napari_ritm.model.zoo",
    "make_predictor": "napari_ritm.inference.modes",
    "Predictor": "napari_ritm.inference.predictor",
    "WindowPredictor": "napari_ritm.inference.window",
    "Click": "napari_ritm.inference.clicks",
    "normalize_image": "napari_ritm.inference.normalize",
    "fit_threshold": "napari_ritm.evaluation.threshold",
    "Session": "napari_ritm.session",
    "ImageSource": "napari_ritm.inference.planes",
    "Record": "napari_ritm.session.record",
    "replay": "napari_ritm.session.replay",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
