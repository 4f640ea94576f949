"""The napari layers the widget reads and draws (napari layer models only, no Qt).

- :func:`channel_choices`: the channels a user may pick in an Image layer;
- :func:`image_source`: an Image layer (and a channel) ->
  :class:`~napari_ritm.inference.planes.ImageSource` + spatial shape, with
  :func:`display_limits`, the intensity range the user chose;
- :func:`plane_coords`: a world position -> (slice key, y, x) in a Labels layer's pixels;
- :func:`add_preview_layer` / :func:`draw_preview`: the current object's mask, one plane;
- :func:`add_clicks_layer` / :func:`draw_clicks`: the clicks, green positive and red negative;
  :func:`click_callback` turns mouse clicks on the canvas into actions;
- :func:`history_step`: napari's undo or redo of a Labels layer, and whether it did anything.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from napari.layers import Image, Labels, Points
from napari.utils.colormaps import DirectLabelColormap

from napari_ritm.inference.clicks import Click
from napari_ritm.inference.planes import ImageSource

__all__ = ["ALL_CHANNELS", "OWN", "add_clicks_layer", "add_preview_layer", "channel_choices",
           "click_callback", "display_limits", "draw_clicks", "draw_preview", "history_step",
           "image_source",
           "plane_coords"]

OWN = "napari-ritm"  # metadata key marking the layers the widget creates
DRAWN = "napari-ritm drawn"  # preview layer metadata: the window drawn last
POSITIVE, NEGATIVE = "limegreen", "red"
DRAG_PIXELS = 4  # a press-release that moved further than this (canvas pixels) is a pan


ALL_CHANNELS = "all (as shown)"
MAX_CHANNELS = 8  # a first axis this short may hold channels (C, [Z,] Y, X)


def channel_choices(layer: Image) -> list[tuple[str, tuple[int | None, int]]]:
    """What the channel box offers for ``layer``: (text, (channel axis, channel)) pairs, first
    the whole image as shown; then each colour of an RGB layer (a (Y, X, C) array), or each
    index of a short first axis of a non-RGB layer with 3 or more axes (a (C, Y, X) array)."""
    data = layer.data[0] if layer.multiscale else layer.data
    choices: list[tuple[str, tuple[int | None, int]]] = [(ALL_CHANNELS, (None, 0))]
    if layer.rgb:
        choices += [(f"channel {c} ({name})", (-1, c))
                    for c, name in enumerate(("red", "green", "blue")[: data.shape[-1]])]
    elif data.ndim >= 3 and data.shape[0] <= MAX_CHANNELS:
        choices += [(f"channel {c} (first axis)", (0, c)) for c in range(data.shape[0])]
    return choices


def image_source(
    layer: Image, channel: str = ALL_CHANNELS
) -> tuple[ImageSource, tuple[int, ...]]:
    """The layer's full-resolution data as an ImageSource of the chosen ``channel`` (a text
    of :func:`channel_choices`; :func:`display_limits` as its contrast limits) and its spatial
    shape (channel or RGB axis removed)."""
    data = layer.data[0] if layer.multiscale else layer.data
    axis, index = dict(channel_choices(layer)).get(channel, (None, 0))
    limits = display_limits(layer)
    if axis is None:
        source = ImageSource(data, rgb=bool(layer.rgb), contrast_limits=limits)
    else:  # one colour of an RGB layer has no display range of its own: its robust range
        source = ImageSource(data, contrast_limits=limits, channel_axis=axis, channel=index)
    return source, source.shape


def display_limits(layer: Image) -> tuple[float, float] | None:
    """The intensity range the user chose for ``layer`` (its contrast limits), or None while
    they are napari's default, the data's full range (one hot pixel then squeezes everything
    else into a few grey levels): the model then sees each plane's robust range
    (:data:`~napari_ritm.inference.normalize.PERCENTILES`; uint8 as it is). None for RGB."""
    if layer.rgb:
        return None
    limits = tuple(float(v) for v in layer.contrast_limits)
    if limits == tuple(float(v) for v in layer.contrast_limits_range):
        return None
    return limits


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


def add_clicks_layer(viewer: Any, labels: Labels, name: str, size: float) -> Points:
    """An empty Points layer on ``labels``' grid, in pan/zoom mode (clicks are ours to add),
    whose markers are rings of ``size`` screen pixels at any zoom."""
    layer = viewer.add_points(
        np.empty((0, labels.ndim)), ndim=labels.ndim, name=name, scale=labels.scale,
        translate=labels.translate, symbol="disc", face_color="transparent",
        border_width=0.3, border_width_is_relative=True, metadata={OWN: "clicks"},
    )
    set_marker_size(layer, size)
    layer.mode = "pan_zoom"
    return layer


def set_marker_size(layer: Points, size: float) -> None:
    """Markers of ``size`` screen pixels whatever the zoom: napari clamps each marker's size on
    the canvas to ``canvas_size_limits``, here (size, size)."""
    if tuple(layer.canvas_size_limits) != (float(size), float(size)):
        layer.canvas_size_limits = (float(size), float(size))


def draw_clicks(
    layer: Points, clicks: Sequence[Click], key: tuple[int, ...], size: float,
    drawn: Sequence[Click] = (),
) -> None:
    """Show ``clicks`` (on slice ``key``) as rings, green for the object and red for the
    background, of ``size`` screen pixels. ``drawn``: the clicks the layer shows now (same
    slice and size): a click added or taken back then costs one update of the layer, not a
    redraw of them all."""
    set_marker_size(layer, size)
    clicks, drawn = tuple(clicks), tuple(drawn)
    if len(layer.data) == len(drawn) and clicks[: len(drawn)] == drawn and len(clicks) > len(
        drawn
    ):
        layer.selected_data = set()  # the current colour would also go to selected points
        for click in clicks[len(drawn):]:
            layer.current_border_color = POSITIVE if click.positive else NEGATIVE
            layer.add([(*key, click.y, click.x)])
        return
    if len(layer.data) == len(drawn) and drawn[: len(clicks)] == clicks and clicks:
        layer.data = layer.data[: len(clicks)]
        return
    data = np.array([(*key, c.y, c.x) for c in clicks], dtype=float).reshape(-1, len(key) + 2)
    layer.data = data
    if len(clicks):  # hollow rings: the object under a click stays visible
        layer.face_color = "transparent"
        layer.border_color = [POSITIVE if c.positive else NEGATIVE for c in clicks]


def history_step(layer: Labels, step: str) -> bool:
    """napari's ``undo`` or ``redo`` (``step``) of a Labels layer; whether it changed anything.

    napari returns nothing and keeps its history private (reading it from a plugin is
    deprecated), but a step that changes the labels refreshes the layer, which emits
    ``set_data`` (``reload`` with asynchronous slicing), and an empty history emits nothing.
    A hidden layer is not refreshed: there the step is taken to have changed something."""
    if not layer.visible:
        getattr(layer, step)()
        return True
    emitted: list[bool] = []

    def note(_event: Any = None) -> None:
        emitted.append(True)

    events = (layer.events.set_data, layer.events.reload)
    for event in events:
        event.connect(note)
    try:
        getattr(layer, step)()
    finally:
        for event in events:
            event.disconnect(note)
    return bool(emitted)


def click_callback(on_click: Callable[..., None]) -> Callable:
    """A mouse-drag callback calling ``on_click(world_position, positive=..., alt=...)``: left
    click is positive; right click or Ctrl/Cmd + click negative; ``alt``: Alt was held; a
    press-drag-release (a pan) nothing."""

    def callback(layer: Any, event: Any):
        if event.button not in (1, 2):
            return
        start, position = np.asarray(event.pos, dtype=float), tuple(event.position)
        negative = event.button == 2 or any(m in ("Control", "Meta") for m in event.modifiers)
        yield
        while event.type == "mouse_move":
            yield
        if np.hypot(*(np.asarray(event.pos, dtype=float) - start)) <= DRAG_PIXELS:
            on_click(position, positive=not negative, alt="Alt" in event.modifiers)

    return callback
