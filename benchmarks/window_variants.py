"""Cheaper clicks for the window predictor: what each saving costs in clicks, and what it saves.

Variants of the widget's default (looking around the clicks, mirror averaging on every pass,
float32), each run with eval_dev.py's protocol (20 clicks, stop at IoU 0.90, threshold 0.49, the
same objects per image) on the ``val_select`` half of the split, object by object against the
default:

- ``bfloat16``: the network under bfloat16 autocast (CPUs with native bfloat16 only);
- ``bfloat16, mirror first click``: also mirror averaging on the passes of an object's first click
  only (the refining ones unmirrored);
- ``bfloat16, no mirror``.

Per variant: NoC@85 / NoC@90 and the IoU after one click per set, the paired differences (mean
and standard error over all objects), and the median time of a predictor call (clicks after the
first of each object; one torch thread) within this run.

    python benchmarks/window_variants.py [--model default] [--subset val_select]

Writes benchmarks/results/window_variants.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from common import RESULTS as RESULTS_DIR
from common import machine, paired_noc, val_dataset
from eval_dev import SETS

from napari_ritm.evaluation.noc import DatasetResult, evaluate_dataset, noc
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.precision import cpu_has_native_bf16
from napari_ritm.model.zoo import load_model

RESULTS = RESULTS_DIR / "window_variants.json"
VARIANTS = {
    "float32, mirror (the default so far)": {"precision": "float32"},
    "bfloat16, mirror": {"precision": "bfloat16"},
    "bfloat16, mirror first click": {"precision": "bfloat16", "flip_refine": False},
    "bfloat16, no mirror": {"precision": "bfloat16", "flip": False},
}


class Timed:
    """A predictor whose calls after an object's first click are timed."""

    def __init__(self, predictor) -> None:
        self.predictor, self.seconds = predictor, []

    def set_image(self, image):
        self.predictor.set_image(image)

    def reset(self):
        self.predictor.reset()

    def predict(self, clicks, prev_mask=None):
        start = time.perf_counter()
        out = self.predictor.predict(clicks, prev_mask)
        if len(clicks) > 1:
            self.seconds.append(time.perf_counter() - start)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--subset", default="val_select", choices=("val_select", "val_report"))
    parser.add_argument("--clicks", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    net = load_model(args.model)
    variants = {k: v for k, v in VARIANTS.items()
                if v.get("precision") != "bfloat16" or cpu_has_native_bf16()}
    sets = [name for name in SETS if name != "stardist_nuclei2d" or args.subset != "val_select"]
    runs: dict[str, dict] = {}
    for name, settings in variants.items():
        timed = Timed(make_predictor(net, "window", **settings))
        per_set = {}
        for set_name in sets:
            per_image, limit = SETS[set_name]
            data = val_dataset(set_name, args.subset, min_area=30,
                               max_objects_per_image=per_image, limit=limit)
            result = DatasetResult(set_name, args.clicks)
            evaluate_dataset(timed, data, result)
            ious = [list(map(float, s["ious"])) for s in result.samples]
            per_set[set_name] = {
                "objects": len(ious),
                "NoC@85": float(np.mean([noc(i, 0.85, args.clicks) for i in ious])),
                "NoC@90": float(np.mean([noc(i, 0.90, args.clicks) for i in ious])),
                "iou_after_1": float(np.mean([i[0] for i in ious])),
                "ious": ious,
            }
        runs[name] = {"settings": settings, "sets": per_set,
                      "refining_click_median_s": round(statistics.median(timed.seconds), 4)}
        print(name, {k: (round(v["NoC@85"], 2), round(v["NoC@90"], 2),
                         round(v["iou_after_1"], 3)) for k, v in per_set.items()},
              f"median refining click {runs[name]['refining_click_median_s']} s", flush=True)
    base_name = next(iter(runs))
    base = [i for s in sets for i in runs[base_name]["sets"][s]["ious"]]
    for name, run in runs.items():
        mine = [i for s in sets for i in run["sets"][s]["ious"]]
        run["paired_vs_default"] = paired_noc(mine, base, max_clicks=args.clicks)
        diff = np.array([a[0] - b[0] for a, b in zip(mine, base)])
        run["paired_vs_default"]["iou_after_1"] = {
            "mean": float(diff.mean()), "se": float(diff.std(ddof=1) / np.sqrt(len(diff)))}
        run["time_ratio_vs_default"] = round(run["refining_click_median_s"]
                                             / runs[base_name]["refining_click_median_s"], 3)
        print(name, json.dumps(run["paired_vs_default"]), run["time_ratio_vs_default"])
    RESULTS.write_text(json.dumps({
        "what": "window predictor variants on the val_select half: NoC and time per click",
        "model": args.model, "subset": args.subset, "max_clicks": args.clicks,
        "objects_per_image_and_limit": {s: SETS[s] for s in sets},
        "machine": {**machine(), "cpu_native_bf16": cpu_has_native_bf16()},
        "runs": runs,
    }, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
