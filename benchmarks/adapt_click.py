"""Does a click in the widget still get its mask while "Adapt model to my labels" runs?

In a shown napari window (under ``xvfb-run`` when there is no display), the widget in its
default mode on the nuclei sample tiled 2x2 (1024x1024 uint16); its Labels layer holds the
sample's nuclei (Otsu threshold, connected components), which the adaptation learns from.
Each object gets a positive click, a negative click beside it and a second positive click,
then Finish; each click is timed from the mouse release until the widget is idle with the
preview drawn. Three phases in one run: clicks alone, clicks while the adaptation trains (started
with the dock's button, torch on one thread as the widget does; the clicks start at its first
training step and it is cancelled after them with the same button), clicks alone again.

    python benchmarks/adapt_click.py [--model default] [--objects 8]

Writes benchmarks/results/adapt_click.json with the medians and the ratio adapting / alone.
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
from common import RESULTS, machine
from widget_click import mouse_click, open_widget, wait_idle


def time_clicks(app, viewer, widget, centres) -> list[float]:
    seconds = []
    for y, x in centres:
        for dy, dx, button in ((0, 0, 1), (0, 12, 2), (3, -3, 1)):
            start = time.perf_counter()
            mouse_click(viewer, (y + dy, x + dx), button)
            wait_idle(app, widget)
            seconds.append(time.perf_counter() - start)
        widget.finish()
        wait_idle(app, widget)
    return seconds


def run(args) -> dict:
    import torch
    from skimage import filters, measure

    from napari_ritm._qt.sample_data import nuclei2d
    from napari_ritm.training.adapt import AdaptOptions

    torch.set_num_threads(1)
    image = np.tile(nuclei2d()[0][0], (2, 2))
    nuclei = measure.label(image > filters.threshold_otsu(image)).astype(np.int32)
    regions = sorted(measure.regionprops(nuclei), key=lambda r: r.area, reverse=True)
    centres = [tuple(int(v) for v in r.centroid) for r in regions[: args.objects]]

    viewer, app, widget = open_widget(image, args.model)
    widget.labels_layer.data = nuclei
    mouse_click(viewer, centres[-1], 1)  # the slice's first click (normalising) is left out
    wait_idle(app, widget)
    widget.reset_button.click()

    phases = {"alone": time_clicks(app, viewer, widget, centres)}
    widget.adapt.adapt_options = AdaptOptions(steps=100000, max_seconds=3600)
    widget.adapt_button.click()
    while widget.adapt._adapt_progress[0] < 1:  # past the first comparison: training is running
        app.processEvents()
        time.sleep(0.01)
    start, first_step = time.perf_counter(), widget.adapt._adapt_progress[0]
    phases["adapting"] = time_clicks(app, viewer, widget, centres)
    adapting_for = time.perf_counter() - start
    steps = widget.adapt._adapt_progress[0] - first_step
    widget.adapt_button.click()  # cancel
    while widget.adapt._adapt_worker is not None:
        app.processEvents()
        time.sleep(0.01)
    phases["alone again"] = time_clicks(app, viewer, widget, centres)
    mode = widget.mode_combo.currentText()
    viewer.close()
    medians = {k: round(statistics.median(v), 4) for k, v in phases.items()}
    alone = statistics.median(phases["alone"] + phases["alone again"])
    return {
        "benchmark": "adapt_click",
        "what": "one click in the widget (mouse release -> preview drawn), median, with and "
                "without the adaptation running in the background",
        "image": "nuclei sample tiled 2x2, 1024x1024 uint16; labels: its Otsu nuclei",
        "model": str(args.model), "mode": mode,
        "clicks_per_phase": len(phases["alone"]), "median_s": medians,
        "p90_s": {k: round(float(np.percentile(v, 90)), 4) for k, v in phases.items()},
        "ratio_adapting_to_alone": round(medians["adapting"] / alone, 3),
        "adaptation_seconds_during_clicks": round(adapting_for, 1),
        "adaptation_steps_during_clicks": steps,
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "machine": machine(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="checkpoint path or registered name")
    parser.add_argument("--objects", type=int, default=8, help="objects, 3 clicks each")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
        return subprocess.call(["xvfb-run", "-a", sys.executable, *sys.argv])
    result = run(args)
    print(json.dumps(result, indent=1))
    out = RESULTS / "adapt_click.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
