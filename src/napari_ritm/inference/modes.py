"""The predictor modes and the interactive settings, in one place.

- ``window`` (the default of the widget and the CLI): :class:`~napari_ritm.inference.window.
  WindowPredictor`, whose cost and quality do not depend on the image size: the first click
  predicts in a window around the click at the image's own resolution (growing it while the
  mask reaches its border), later clicks zoom in on the object, each pass averaged with the
  mirrored image; :data:`WINDOW_SETTINGS`, BatchNorms folded and channels_last, bfloat16
  where the CPU computes it natively.
- ``exact``: the paper's evaluation predictor (ZoomIn to 400 px, horizontal-flip averaging), with
  probabilities within 1e-4 of the official NoBRS predictor, in float32. The network runs folded
  and channels_last when a probe shows this moves its probabilities by at most 1e-5; otherwise
  as a copy that only drops the OCR attention that cannot act with one class
  (:func:`napari_ritm.model.fuse.optimize_exact`).
- ``fast``: ZoomIn to :data:`FAST_TARGET_SIZE` px, no flip, BatchNorms folded and channels_last
  (float rounding moves like a different thread count would).

``interactive=True`` adds what the official demo and the napari widget use on top:
ZoomIn from the first click (``skip_clicks=-1``) and at most 800 px through the network
(``max_size=800``), so no click ever runs the network on the full image.

Usage: ``make_predictor(net, "fast", interactive=True)``, which runs the mode's inference copy of
the network (:data:`NETWORKS`). With ONNX Runtime as the backend pass the
:class:`~napari_ritm.model.onnx_backend.OnnxRITM` as the model: it is used as it is.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

__all__ = [
    "DEFAULT_MODE",
    "auto_precision",
    "FAST_TARGET_SIZE",
    "INTERACTIVE",
    "INTERACTIVE_THREADS",
    "MODES",
    "NETWORKS",
    "PREDICTOR_MODES",
    "WIDGET_MODE",
    "WINDOW_SETTINGS",
    "inference_network",
    "make_predictor",
    "mode_settings",
    "predictor_kwargs",
    "set_interactive_threads",
    "with_interactive_threads",
]

#: ZoomIn target (long side, px) of the fast mode.
FAST_TARGET_SIZE = 256

#: Predictor keyword arguments per mode (without the interactive additions).
PREDICTOR_MODES: dict[str, dict] = {
    "exact": {"zoom_in": True, "target_size": 400, "flip": True},
    "fast": {"zoom_in": True, "target_size": FAST_TARGET_SIZE, "flip": False},
}

#: How each mode's network is optimised (:func:`napari_ritm.model.fuse.optimize`): the exact
#: mode folds only where a probe shows it keeps the probabilities within 1e-5.
NETWORKS: dict[str, str] = {"window": "fused", "exact": "exact", "fast": "fused"}

#: WindowPredictor keyword arguments of the ``window`` mode: the window rule chosen in
#: benchmarks/window_rule.py; mirror averaging on every pass and the network in bfloat16 where
#: the CPU computes it natively (``"auto"``), as benchmarks/window_variants.py chose them
#: (docs/speed.md has the figures); correction clicks that change a region only where they were
#: clicked when refining a label (local_corrections; thin_change chosen on val_select objects
#: with benchmarks/refine.py's protocol; docs/evaluation.md).
WINDOW_SETTINGS: dict = {
    "net_size": 256,
    "first_window": 96,
    "max_window": 1024,
    "min_crop_size": 96,
    "second_look": 4,
    "local_corrections": True,
    "thin_change": 0.15,
    "flip": True,
    "precision": "auto",
}

#: Every mode by name, the default first.
MODES = ("window", *PREDICTOR_MODES)
DEFAULT_MODE = "window"

#: The widget's default mode.
WIDGET_MODE = DEFAULT_MODE

#: Added for interactive use (the official demo's settings).
INTERACTIVE: dict = {"skip_clicks": -1, "max_size": 800}

#: torch intra-op threads for the interactive path (see benchmarks/click_latency.py: with a busy
#: second core, e.g. napari drawing, two threads stall on each other by up to ~25x).
INTERACTIVE_THREADS = 1


def mode_settings(mode: str) -> dict:
    """The settings of ``mode`` (a new dict): :data:`WINDOW_SETTINGS` or :data:`PREDICTOR_MODES`."""
    if mode == "window":
        return dict(WINDOW_SETTINGS)
    return predictor_kwargs(mode)


def inference_network(model, mode: str):
    """The network ``mode`` runs: for an ``RITMNet``, its inference copy of :data:`NETWORKS`
    (a new copy: build it once per model and mode); anything else (an inference copy, an ONNX
    model) as it is."""
    from napari_ritm.model.ritm_net import RITMNet

    if mode not in NETWORKS:
        raise ValueError(f"unknown predictor mode {mode!r}; choose from {', '.join(MODES)}")
    if isinstance(model, RITMNet):
        from napari_ritm.model.fuse import optimize

        return optimize(model.eval(), NETWORKS[mode]).model
    return model


def make_predictor(model, mode: str = DEFAULT_MODE, *, interactive: bool = False, **overrides):
    """The predictor of ``mode`` (one of :data:`MODES`) for ``model``: an ``RITMNet`` (run as
    the mode's inference copy, :func:`inference_network`) or a copy built before, run as given.
    ``interactive`` adds the official demo's settings to the paper's predictor modes (the window
    mode is interactive by construction); ``overrides`` replace single settings (e.g.
    ``flip=False``, ``prob_thresh=0.6``). The one way the widget, the commands and training
    validation build their predictors. For a model from ``load_model`` the predictor's ``info``
    says how to build it again (model, its file's SHA-256, mode, settings)."""
    source = getattr(model, "source", None)
    model = inference_network(model, mode)
    if mode == "window":
        from napari_ritm.inference.window import WindowPredictor

        settings = {**WINDOW_SETTINGS, **overrides}
        if settings.get("precision") == "auto":
            settings["precision"] = auto_precision(model)
        predictor = WindowPredictor(model, **settings)
    else:
        from napari_ritm.inference.predictor import Predictor

        predictor = Predictor(
            model, **{**predictor_kwargs(mode, interactive=interactive), **overrides}
        )
    if source is not None:  # how to build it again (a session's record keeps this)
        from napari_ritm.model.zoo import model_file_hash

        # the mirror averaging and the second look are written down even when they are the
        # mode's default: a record replays the same way after a default changes
        settings = {"flip": bool(predictor.flip), **overrides}
        if mode == "window":
            settings.setdefault("second_look", predictor.second_look)
            settings.setdefault("local_corrections", predictor.local_corrections)
            settings.setdefault("thin_change", predictor.thin_change)
        predictor.info = {"model": source, "sha256": model_file_hash(source), "mode": mode,
                          "interactive": interactive, "settings": settings}
    return predictor


def auto_precision(model) -> str:
    """``"bfloat16"`` for a network on a CPU that computes bfloat16 natively, else
    ``"float32"`` (elsewhere bfloat16 is emulated, slower than float32)."""
    from napari_ritm.model.precision import cpu_has_native_bf16

    device = getattr(model, "device", None)
    if device is None:
        parameters = getattr(model, "parameters", None)
        first = next(parameters(), None) if callable(parameters) else None
        device = first.device if first is not None else "cpu"
    return "bfloat16" if str(device) == "cpu" and cpu_has_native_bf16() else "float32"


def predictor_kwargs(mode: str, *, interactive: bool = False) -> dict:
    """Keyword arguments for :class:`~napari_ritm.inference.predictor.Predictor` in ``mode``
    (``"exact"`` or ``"fast"``); ``interactive`` adds :data:`INTERACTIVE`. Returns a new dict."""
    if mode not in PREDICTOR_MODES:
        raise ValueError(
            f"unknown predictor mode {mode!r}; choose from {', '.join(PREDICTOR_MODES)}"
        )
    kwargs = dict(PREDICTOR_MODES[mode])
    if interactive:
        kwargs.update(INTERACTIVE)
    return kwargs


def set_interactive_threads(threads: int = INTERACTIVE_THREADS) -> None:
    """Set torch's intra-op thread count for interactive prediction, for the calling thread
    (the setting is per thread: a new thread starts at torch's default, every core)."""
    import torch

    torch.set_num_threads(int(threads))


def with_interactive_threads(function: Callable, threads: int = INTERACTIVE_THREADS) -> Callable:
    """``function`` (a plain or a generator function) wrapped so that whichever thread runs it
    first sets torch's thread count to ``threads``: what every worker thread that runs the
    network starts with."""
    if inspect.isgeneratorfunction(function) or inspect.isgeneratorfunction(
        getattr(function, "__func__", None)
    ):
        @functools.wraps(function)
        def generator(*args, **kwargs):
            set_interactive_threads(threads)
            return (yield from function(*args, **kwargs))

        return generator

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        set_interactive_threads(threads)
        return function(*args, **kwargs)

    return wrapper
