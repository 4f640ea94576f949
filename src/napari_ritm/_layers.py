"""The napari layers the widget reads and draws (napari layer models only, no Qt).

- :func:`image_source`: an Image layer -> :class:`~napari_ritm.planes.ImageSource` + spatial shape;
- :func:`plane_coords`: a world position -> (slice key, y, x) in a Labels layer's pixels;
- :func:`add_preview_layer` / :func:`draw_preview`: the current object's mask, one plane;
- :func:`add_clicks_layer` / :func:`draw_clicks`: the clicks, green positive and red negative;
  :func:`click_callback` and :func:`bind_keys` turn mouse clicks and keys on it into actions.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from napari.layers import Image, Labels, Points
from napari.utils.colormaps import DirectLabelColormap

from napari_ritm.inference.clicks import Click
from napari_ritm.planes import ImageSource

__all__ = ["OWN", "add_clicks_layer", "add_preview_layer", "bind_keys", "click_callback",
           "draw_clicks", "draw_preview", "image_source", "plane_coords"]

OWN = "napari-ritm"  # metadata key marking the layers the widget creates
DRAWN = "napari-ritm drawn"  # preview layer metadata: the window drawn last
POSITIVE, NEGATIVE = "limegreen", "red"
DRAG_PIXELS = 4  # a press-release that moved further than this (canvas pixels) is a pan


def image_source(layer: Image) -> tuple[ImageSource, tuple[int, ...]]:
    """The layer's full-resolution data as an ImageSource (the display range as contrast limits
    for non-RGB data) and its spatial shape (RGB axis removed)."""
    data = layer.data[0] if layer.multiscale else layer.data
    spatial = tuple(int(s) for s in (data.shape[:-1] if layer.rgb else data.shape))
    limits = None if layer.rgb else tuple(float(v) for v in layer.contrast_limits)
    return ImageSource(data, rgb=bool(layer.rgb), contrast_limits=limits), spatial


def plane_coords(
    labels: Labels, world: Sequence[float]
) -> tuple[tuple[int, ...], float, float] | None:
    """(leading indices, y, x) of a world position in ``labels``' pixels; None outside the stack
    (y and x may still lie outside the plane: the session checks them)."""
    coords = np.asarray(labels.world_to_data(world), dtype=float)
    key = tuple(int(np.floor(c + 0.5)) for c in coords[:-2])
    if not all(0 <= k < n for k, n in zip(key, labels.data.shape)):
        return None
    return key, float(coords[-2]), float(coords[-1])


def add_preview_layer(viewer: Any, labels: Labels, name: str) -> Labels:
    """A yellow Labels layer holding one (H, W) plane, placed on the slice in view by
    :func:`draw_preview` (so a stack is never copied)."""
    shape = (1,) * (labels.ndim - 2) + tuple(labels.data.shape[-2:])
    layer = viewer.add_labels(
        np.zeros(shape, np.uint8), name=name, scale=labels.scale, translate=labels.translate,
        opacity=0.55, metadata={OWN: "preview"},
        colormap=DirectLabelColormap(
            color_dict={None: "transparent", 0: "transparent", 1: "yellow"}
        ),
    )
    layer.editable = False
    return layer


def draw_preview(
    layer: Labels,
    labels: Labels,
    key: tuple[int, ...],
    window: tuple[tuple[slice, slice], np.ndarray] | None,
) -> None:
    """Show the preview on the slice ``key`` of ``labels``: ``window`` is (row and column slices,
    (h, w) bool mask) as :attr:`Session.preview_window` gives it, or None for no preview. Only
    the window drawn last time and the new one are written."""
    if key:
        scale = np.array(labels.scale, dtype=float)
        translate = np.array(labels.translate, dtype=float)  # a copy: never touch the labels
        translate[: len(key)] += np.asarray(key) * scale[: len(key)]
        layer.translate = translate
    plane = layer.data.reshape(layer.data.shape[-2:])
    drawn = layer.metadata.get(DRAWN)
    if drawn is not None:
        plane[drawn] = 0
    if window is not None:
        slices, mask = window
        np.copyto(plane[slices], mask, casting="unsafe")
    layer.metadata[DRAWN] = None if window is None else window[0]
    layer.refresh()


def add_clicks_layer(viewer: Any, labels: Labels, name: str, radius: float) -> Points:
    """An empty Points layer on ``labels``' grid, in pan/zoom mode (clicks are ours to add)."""
    layer = viewer.add_points(
        np.empty((0, labels.ndim)), ndim=labels.ndim, name=name, size=2 * radius,
        scale=labels.scale, translate=labels.translate, border_width=0.1, border_color="white",
        metadata={OWN: "clicks"},
    )
    layer.mode = "pan_zoom"
    return layer


def draw_clicks(
    layer: Points, clicks: Sequence[Click], key: tuple[int, ...], radius: float
) -> None:
    """Show ``clicks`` (on slice ``key``) as disks of ``radius`` pixels."""
    data = np.array([(*key, c.y, c.x) for c in clicks], dtype=float).reshape(-1, len(key) + 2)
    layer.data = data
    if len(clicks):
        layer.face_color = [POSITIVE if c.positive else NEGATIVE for c in clicks]
        layer.size = 2 * radius
    layer.current_size = 2 * radius


def click_callback(on_click: Callable[..., None]) -> Callable:
    """A mouse-drag callback calling ``on_click(world_position, positive=...)``: left click is
    positive; right click or Ctrl/Cmd + click negative; a press-drag-release (a pan) nothing."""

    def callback(layer: Any, event: Any):
        if event.button not in (1, 2):
            return
        start, position = np.asarray(event.pos, dtype=float), tuple(event.position)
        negative = event.button == 2 or any(m in ("Control", "Meta") for m in event.modifiers)
        yield
        while event.type == "mouse_move":
            yield
        if np.hypot(*(np.asarray(event.pos, dtype=float) - start)) <= DRAG_PIXELS:
            on_click(position, positive=not negative)

    return callback


def bind_keys(layer: Any, actions: dict[str, Callable[[], None]]) -> None:
    """Bind napari key names (e.g. ``"Control-Z"``) to argument-less actions on ``layer``."""
    for key, action in actions.items():
        layer.bind_key(key, _key_handler(action), overwrite=True)


def _key_handler(action: Callable[[], None]) -> Callable[[Any], None]:
    def handler(layer: Any) -> None:
        action()

    return handler
