"""A screenshot of the widget in use (one nucleus committed after one click, another in progress
after its first click), under Xvfb, written to a temporary folder; with
``NAPARI_RITM_UPDATE_SCREENSHOT=1`` it replaces the README's docs/screenshot.png.

The model is the shipped ``default`` one; in a checkout without it the reference checkpoint with
random weights stands in (its masks are arbitrary).
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image as PILImage
from skimage import filters, measure

from conftest import REPO
from test_widget import FAKE_CHECKPOINT, WIDGET, mouse_click, wait_idle

SCREENSHOT = REPO / "docs" / "screenshot.png"
UPDATE = os.environ.get("NAPARI_RITM_UPDATE_SCREENSHOT") == "1"


def model_source(ref_dir) -> str:
    from napari_ritm.model.zoo import local_path

    return "default" if local_path("default").is_file() else str(ref_dir / FAKE_CHECKPOINT)


def nucleus_centres(image, count, margin=64):
    """Centres (row, col) of the ``count`` largest bright blobs that are single nuclei: convex
    (solidity at least 0.9), not touching nuclei that the threshold merged, whose centroid can
    fall between them; at least ``margin`` px from the border, so the zoomed view stays on the
    image."""
    regions = [r for r in measure.regionprops(measure.label(image > filters.threshold_otsu(image)))
               if r.solidity >= 0.9
               and all(margin <= c <= n - margin for c, n in zip(r.centroid, image.shape))]
    regions.sort(key=lambda r: r.area, reverse=True)
    return [tuple(int(v) for v in r.centroid) for r in regions[:count]]


def test_screenshot_of_the_widget_in_use(make_napari_viewer, qtbot, ref_dir, tmp_path):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1800, 1000)
    viewer.open_sample("napari-ritm", "nuclei2d")
    _, widget = viewer.window.add_plugin_dock_widget("napari-ritm", WIDGET)
    qtbot.waitUntil(lambda: not widget.models.loading, timeout=120000)
    widget.models.load_model(model_source(ref_dir))
    qtbot.waitUntil(lambda: widget.models.predictor is not None, timeout=60000)

    first, second = nucleus_centres(viewer.layers["nuclei2d"].data, 2)
    mouse_click(viewer, first)
    wait_idle(widget, qtbot, timeout=60000)
    widget.finish()  # one committed object in the Labels layer
    wait_idle(widget, qtbot)
    mouse_click(viewer, second)  # and one in progress, one click so far: marker + preview
    wait_idle(widget, qtbot, timeout=60000)
    viewer.camera.center = (first[0] + second[0]) / 2, (first[1] + second[1]) / 2
    viewer.camera.zoom = 2.5

    path = SCREENSHOT if UPDATE else tmp_path / "screenshot.png"
    viewer.screenshot(path=str(path), canvas_only=False, flash=False)
    shot = np.asarray(PILImage.open(path))
    assert shot.shape[0] > 400 and shot.shape[1] > 800
    assert len(np.unique(shot.reshape(-1, shot.shape[-1]), axis=0)) > 100  # not a blank window
    assert widget.labels_layer.data.max() == 1 and len(widget.clicks_layer.data) == 1
