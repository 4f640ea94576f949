"""Should the window grow for the user's mask when the Threshold is under 0.49?

The window predictor grows its first window while the mask at its own threshold (0.49) reaches
the window's border, whatever threshold the user cuts the mask at (the widget's Threshold,
``napari-ritm predict --threshold``). Below 0.49 the user's mask is larger and can reach the
border of a window that stopped growing. The alternative is a predictor that grows for the
user's threshold (built with ``prob_thresh`` at it; for a first click that is the only thing
it changes). This scores both on the first click of eval_dev.py's val objects (window mode,
mirror averaging, one thread) at 0.2 / 0.3 / 0.4: how many first windows the alternative grows
further, and the mean IoU of the first masks either way. Results in
``benchmarks/results/low_threshold.json``.

    python benchmarks/low_threshold.py [--sets dsb2018 ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from common import DATA, RESULTS, machine, val_dataset
from eval_dev import SETS

from napari_ritm.evaluation.noc import evaluate_sample, get_iou
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.zoo import load_model

THRESHOLDS = (0.2, 0.3, 0.4)


def first_masks(net, name: str) -> dict:
    """Per threshold: objects, those whose window grows further for it, and the mean first-click
    IoU with the window grown for 0.49 (``as_now``) and for the threshold (``grown``), over all
    objects and over those alone; median seconds of a first click either way."""
    k, limit = SETS[name]
    ds = val_dataset(name, max_objects_per_image=k, min_area=30, limit=limit)
    now = make_predictor(net, "window")
    alternatives = {t: make_predictor(net, "window", prob_thresh=t) for t in THRESHOLDS}
    rows = {t: [] for t in THRESHOLDS}
    seconds = {"as_now": [], "grown": []}
    for sample in ds:
        start = time.perf_counter()
        probs = evaluate_sample(now, sample.image, sample.gt, max_clicks=1, stop_iou=None).probs
        seconds["as_now"].append(time.perf_counter() - start)
        for t, other in alternatives.items():
            start = time.perf_counter()
            grown = evaluate_sample(other, sample.image, sample.gt, max_clicks=1,
                                    stop_iou=None).probs
            further = other.roi != now.roi
            if further:
                seconds["grown"].append(time.perf_counter() - start)
            rows[t].append((further, get_iou(sample.gt, probs > t), get_iou(sample.gt, grown > t)))
    out = {}
    for t, values in rows.items():
        further = np.array([r[0] for r in values])
        as_now, grown = np.array([r[1] for r in values]), np.array([r[2] for r in values])
        out[f"{t:.2f}"] = {
            "objects": len(values), "grows_further": int(further.sum()),
            "iou1_as_now": round(float(as_now.mean()), 4),
            "iou1_grown": round(float(grown.mean()), 4),
            "iou1_as_now_further": round(float(as_now[further].mean()), 4) if further.any()
            else None,
            "iou1_grown_further": round(float(grown[further].mean()), 4) if further.any()
            else None,
        }
    out["seconds"] = {key: round(float(np.median(v)), 3) if v else None
                      for key, v in seconds.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"{DATA} not found (set NAPARI_RITM_SHARED)", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    net = load_model("default")
    result = {"benchmark": "low_threshold", "model": "default", "mode": "window", "flip": True,
              "thresholds": list(THRESHOLDS), "sets": {}}
    for name in args.sets:
        result["sets"][name] = first_masks(net, name)
        print(name, json.dumps(result["sets"][name]), flush=True)
    pooled = {}
    for t in THRESHOLDS:
        entries = [result["sets"][n][f"{t:.2f}"] for n in args.sets]
        n = sum(e["objects"] for e in entries)
        pooled[f"{t:.2f}"] = {
            "objects": n, "grows_further": sum(e["grows_further"] for e in entries),
            **{key: round(sum(e[key] * e["objects"] for e in entries) / n, 4)
               for key in ("iou1_as_now", "iou1_grown")},
        }
    result["pooled"] = pooled
    print("pooled", json.dumps(pooled))
    result["machine"] = machine()
    (RESULTS / "low_threshold.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
