"""Time per click in the napari widget, as a user meets it: the default model and mode (looking
around the clicks, with the extra accuracy of mirror averaging), in a shown napari window (under
``xvfb-run`` when there is no display), with and without another CPU-bound process running.

Timed from the mouse release on the canvas until the widget is idle again with the preview drawn:
the session queue, the worker thread, the predictor and the layer updates. Where the time goes is
recorded per click: the network's forward passes, the rest of the predictor (reading and resizing
windows, the window rule), and the widget (queue, threads, napari's layer refresh). Images: the
nuclei sample tiled to 1024 x 1024 and 8192 x 8192 (uint16). Each object gets a positive click
on a nucleus, a negative click beside it and a second positive click, then Finish; the first
click on an image also normalises the plane and is reported apart.

Variants, in one run (so their ratios compare): the network in float32 and in bfloat16 (where
the CPU has it natively; the default there), the load on or off. ``--as-before`` times, in a
process of its own, the widget as shipped before issue 37: float32, its worker threads at
torch's default thread count (they do not inherit the main thread's one), the clicks and
preview redrawn whole at every update.

    python benchmarks/widget_click.py [--objects 6] [--sizes 1024 8192] [--as-before]

Pause other work on the machine first: the "without load" figures assume an idle CPU. Writes
benchmarks/results/widget_click.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
from common import RESULTS as RESULTS_DIR
from common import machine

RESULTS = RESULTS_DIR / "widget_click.json"
SPIN = "while True: pass"


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


def wait_idle(app, widget, timeout=600.0):
    end = time.perf_counter() + timeout
    while not widget.idle:  # an idle event loop: a busy one would steal the worker's CPU
        app.processEvents()
        time.sleep(0.002)
        if time.perf_counter() > end:
            raise TimeoutError("the widget did not become idle")
    app.processEvents()


def open_widget(image, model: str = "default"):
    """A shown napari viewer with ``image`` and the dock widget using ``model``, idle:
    (viewer, the Qt application, the widget)."""
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    viewer.add_image(image, name="image")
    _, widget = viewer.window.add_plugin_dock_widget("napari-ritm", "RITM segmentation")
    wait_idle(app, widget)
    if model != "default":
        widget.models.load_model(model)
        wait_idle(app, widget)
    return viewer, app, widget


class Clock:
    """Seconds spent in the network's forward passes and in the predictor, per click."""

    def __init__(self) -> None:
        self.network = self.predictor = 0.0
        self.passes = 0
        self.threads: set[int] = set()

    def wrap_network(self, net):
        clock = self

        class Timed:
            variant = net.variant
            device = getattr(net, "device", None)
            folded, channels_last = getattr(net, "folded", False), getattr(
                net, "channels_last", False)

            def __call__(self, *args, **kwargs):
                import torch

                clock.threads.add(torch.get_num_threads())
                clock.passes += 1
                start = time.perf_counter()
                try:
                    return net(*args, **kwargs)
                finally:
                    clock.network += time.perf_counter() - start

            def parameters(self):
                return net.parameters()

        return Timed()


def time_clicks(viewer, app, widget, centres, clock) -> dict:
    from napari_ritm.session.jobs import PredictJob

    original = PredictJob.run

    def timed(job):
        start = time.perf_counter()
        try:
            return original(job)
        finally:
            clock.predictor += time.perf_counter() - start

    PredictJob.run = timed
    rows, first = [], None
    try:
        for y, x in centres:
            for dy, dx, button in ((0, 0, 1), (0, 12, 2), (3, -3, 1)):
                clock.network = clock.predictor = 0.0
                clock.passes = 0
                start = time.perf_counter()
                mouse_click(viewer, (y + dy, x + dx), button)
                wait_idle(app, widget)
                total = time.perf_counter() - start
                row = (total, clock.network, clock.predictor - clock.network,
                       total - clock.predictor, clock.passes)
                if first is None:
                    first = row
                else:
                    rows.append(row)
            widget.finish()
            wait_idle(app, widget)
    finally:
        PredictJob.run = original
    med = [statistics.median(r[i] for r in rows) for i in range(4)]
    passes = np.bincount([r[4] for r in rows]).tolist()
    return {
        "median_s": round(med[0], 4),
        "p90_s": round(float(np.percentile([r[0] for r in rows], 90)), 4),
        "median_network_s": round(med[1], 4),
        "median_predictor_other_s": round(med[2], 4),
        "median_widget_s": round(med[3], 4),
        "first_click_s": round(first[0], 4),
        "clicks": len(rows),
        "clicks_by_network_passes": {str(k): n for k, n in enumerate(passes) if n},
    }


def run(args) -> dict:
    import napari
    import torch
    from skimage import filters, measure

    from napari_ritm._qt import widget as _widget
    from napari_ritm._qt.sample_data import nuclei2d
    from napari_ritm.inference.modes import make_predictor
    from napari_ritm.model.precision import cpu_has_native_bf16

    if args.as_before:  # every worker thread at torch's default thread count, model loading's too
        from napari_ritm._qt import workers

        workers.with_interactive_threads = lambda function: function
    tile = nuclei2d()[0][0]
    regions = measure.regionprops(measure.label(tile > filters.threshold_otsu(tile)))
    regions = sorted(regions, key=lambda r: r.area, reverse=True)[: args.objects]
    centres = [tuple(int(v) for v in r.centroid) for r in regions]
    precisions = ["float32"] + (["bfloat16"] if cpu_has_native_bf16() else [])
    variants = [("float32", True)] if args.as_before else [(p, False) for p in precisions]
    out = {}
    for size in args.sizes:
        image = np.tile(tile, (size // tile.shape[0], size // tile.shape[1]))
        viewer, app, widget = open_widget(image)
        for load in (False, True):
            spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if load else None
            try:
                for precision, before in variants:
                    clock = Clock()
                    net = clock.wrap_network(widget.models._networks["window"])
                    predictor = make_predictor(net, "window", precision=precision)
                    widget.models.set_predictor(predictor, widget.models.predictor_info)
                    restore = _widget.RITMWidget.refresh
                    if before:  # clicks and preview redrawn whole at every refresh, as before

                        def redraw_all(self, refresh=restore):
                            self._drawn_clicks = self._drawn_preview = None
                            refresh(self)

                        _widget.RITMWidget.refresh = redraw_all
                    try:
                        row = time_clicks(viewer, app, widget, centres, clock)
                    finally:
                        _widget.RITMWidget.refresh = restore
                    row["worker_torch_threads"] = sorted(clock.threads)
                    name = (f"{size}px, {precision}, {'load' if load else 'idle'}"
                            + (", as before" if before else ""))
                    out[name] = row
                    print(f"{name:34s} median {row['median_s']:.3f} s (network "
                          f"{row['median_network_s']:.3f}, predictor other "
                          f"{row['median_predictor_other_s']:.3f}, widget "
                          f"{row['median_widget_s']:.3f}); first click {row['first_click_s']:.3f}"
                          f" s; passes {row['clicks_by_network_passes']}; worker threads "
                          f"{row['worker_torch_threads']}", flush=True)
            finally:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
        viewer.close()
    return {
        "what": "one click in the napari-ritm widget (default model, looking around the clicks, "
                "mirror averaging): mouse release -> preview drawn, median over the clicks after "
                "the first",
        "image": "nuclei sample tiled, uint16",
        "objects_per_image": len(centres),
        "load": f"another process running '{SPIN}' (one core of {os.cpu_count()})",
        "runs": out,
        "machine": {**machine(), "napari": napari.__version__,
                    "cpu_native_bf16": cpu_has_native_bf16()},
        "main_thread_torch_threads": torch.get_num_threads(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=6, help="objects per image, 3 clicks each")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--as-before", action="store_true",
                        help="time the widget as shipped before issue 37 instead")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
        return subprocess.call(["xvfb-run", "-a", sys.executable, *sys.argv])
    result = run(args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    kept = {k: v for k, v in old.get("runs", {}).items() if (", as before" in k) != args.as_before}
    result["runs"] = {**kept, **result["runs"]}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
