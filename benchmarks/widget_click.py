"""Latency of one click in the napari widget on a 1024x1024 image (median over many clicks).

Timed from the mouse release on the clicks layer until the widget is idle again with the preview
drawn: the session queue, the worker thread, the predictor call and the layer updates, in a shown
napari window (under ``xvfb-run`` when there is no display). The image is the nuclei sample
tiled 2x2 (1024x1024 uint16). Each object gets a positive click on a nucleus, a negative click
beside it and a second positive click, then Finish. The first click on the slice also normalises
the plane and hands it to the predictor; it is reported apart and left out of the median.

The model defaults to the shipped ``default`` (HRNet18s IT-M, trained): exact mode folds the
network only for weights that pass its probe (``optimize_exact``), which trained weights do and
the random-weight reference checkpoint does not, so the weights do change the timing here.
Modes: the widget defaults (zoom-in and flip on: the official demo settings, 400 px crops, at
most 800 px), flip off, and zoom-in off.

    python benchmarks/widget_click.py [--model PATH|NAME] [--objects 6] [--threads N]
                                      [--modes default no-flip no-zoom]

Writes benchmarks/results/widget_click.json: one entry per torch thread count (``--threads``),
with the machine's load average, since other processes on a small CPU change the figures a lot.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
from common import RESULTS as RESULTS_DIR

RESULTS = RESULTS_DIR / "widget_click.json"
MODES = {"default": (True, True), "no-flip": (True, False), "no-zoom": (False, True)}
MODE_NAMES = {"default": "zoom-in + flip (widget default)", "no-flip": "zoom-in, no flip",
              "no-zoom": "no zoom-in, flip"}


def mouse_click(viewer, world, button):
    """A click as napari's canvas dispatches it: viewer callbacks, then the selected layer's."""
    from napari.utils._test_utils import read_only_mouse_event
    from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

    for kind, callbacks in (("mouse_press", mouse_press_callbacks),
                            ("mouse_release", mouse_release_callbacks)):
        event = read_only_mouse_event(type=kind, button=button, position=tuple(world),
                                      pos=np.zeros(2))
        callbacks(viewer, event)
        callbacks(viewer.layers.selection.active, event)


def wait_idle(app, widget, timeout=300.0):
    end = time.perf_counter() + timeout
    while not widget.idle:  # an idle event loop: a busy one would steal the worker's CPU
        app.processEvents()
        time.sleep(0.002)
        if time.perf_counter() > end:
            raise TimeoutError("the widget did not become idle")
    app.processEvents()


def open_widget(image, model: str):
    """A shown viewer with ``image`` and the napari-ritm dock using ``model``: (viewer, app,
    widget), idle."""
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    viewer.add_image(image, name="nuclei 1024")
    _, widget = viewer.window.add_plugin_dock_widget("napari-ritm", "RITM segmentation")
    wait_idle(app, widget)
    widget.load_model(model)
    wait_idle(app, widget)
    if widget.predictor is None:
        raise SystemExit(f"could not load {model}: {widget.status.text()}")
    return viewer, app, widget


def run(args) -> dict:
    import napari
    import torch
    from skimage import filters, measure

    from napari_ritm._sample_data import nuclei2d
    from napari_ritm.planes import PredictJob

    if args.threads:
        torch.set_num_threads(args.threads)
    load_at_start = [round(v, 2) for v in os.getloadavg()]
    predictor_seconds: list[float] = []
    original_run = PredictJob.run

    def timed_run(job):
        start = time.perf_counter()
        try:
            return original_run(job)
        finally:
            predictor_seconds.append(time.perf_counter() - start)

    PredictJob.run = timed_run
    image = np.tile(nuclei2d()[0][0], (2, 2))
    regions = measure.regionprops(measure.label(image > filters.threshold_otsu(image)))
    regions = sorted(regions, key=lambda r: r.area, reverse=True)[: args.objects]
    centres = [tuple(int(v) for v in r.centroid) for r in regions]

    viewer, app, widget = open_widget(image, args.model)

    results = {}
    for mode in args.modes:
        zoom, flip = MODES[mode]
        widget.zoom_check.setChecked(zoom)
        widget.flip_check.setChecked(flip)
        wait_idle(app, widget)
        latencies, first = [], None
        predictor_seconds.clear()
        for y, x in centres:
            for dy, dx, button in ((0, 0, 1), (0, 12, 2), (3, -3, 1)):
                start = time.perf_counter()
                mouse_click(viewer, (y + dy, x + dx), button)
                wait_idle(app, widget)
                seconds = time.perf_counter() - start
                if first is None:
                    first = seconds
                else:
                    latencies.append(seconds)
            widget.finish()
            wait_idle(app, widget)
        results[MODE_NAMES[mode]] = {
            "median_s": round(statistics.median(latencies), 4),
            "p90_s": round(float(np.percentile(latencies, 90)), 4),
            "first_click_on_slice_s": round(first, 4),
            "predictor_median_s": round(statistics.median(predictor_seconds[1:]), 4),
            "clicks": len(latencies),
        }
        r = results[MODE_NAMES[mode]]
        print(f"{MODE_NAMES[mode]:32s} median {r['median_s']:.3f} s  p90 {r['p90_s']:.3f} s  "
              f"(predictor {r['predictor_median_s']:.3f} s; first click on the slice "
              f"{first:.3f} s)", flush=True)
    viewer.close()
    return {
        "what": "one click in the napari-ritm widget: mouse release -> preview drawn, median",
        "image": "nuclei sample tiled 2x2, 1024x1024 uint16",
        "model": str(args.model),
        "objects": len(centres),
        "modes": results,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load_at_start,  # other processes on the machine (1/5/15 min)
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "machine": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "napari": napari.__version__,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="checkpoint path or registered name")
    parser.add_argument("--objects", type=int, default=6, help="objects, 3 clicks each")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES),
                        help="predictor settings to time (default: all)")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
        return subprocess.call(["xvfb-run", "-a", sys.executable, *sys.argv])
    result = run(args)
    runs = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    runs = {k: v for k, v in runs.items() if k.startswith("torch_threads=")}
    runs[f"torch_threads={result['torch_threads']}"] = result  # other thread counts are kept
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(dict(sorted(runs.items())), indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
