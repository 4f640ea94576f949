"""Choosing the window predictor's window sizes and growth rule by measurement.

On val objects of every shared set (split file of the default model; objects of ~10 to ~600 px),
for each candidate setting of :class:`~napari_ritm.inference.window.WindowPredictor`:

- ``geometry`` (no network): the ground-truth mask stands in for the prediction. The first click
  (at the object's innermost pixel, as the evaluation clicker puts it) gets a window that grows
  while the mask reaches a side of it; the mask then takes the predictor's own path (resize to
  the network input, the network's stride-4 output grid, bilinear back, threshold 0.5). Reports
  the IoU ceiling this geometry allows, the share of objects that can reach 0.90, the number of
  network passes and the largest window.
- ``model`` (with ``--model``): the predictor itself with the clicker of the NoC protocol:
  mean IoU after 1 and 3 clicks, and the median seconds per click (one torch thread).

    python benchmarks/window_rule.py [--model default] [--per-set 20]

Writes benchmarks/results/window_rule.json (per setting: per-set and overall figures).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import DATA, SPLIT
from common import RESULTS as RESULTS_DIR

from napari_ritm.evaluation.clicker import Clicker
from napari_ritm.evaluation.datasets import InstanceDataset
from napari_ritm.evaluation.noc import get_iou
from napari_ritm.inference.clicks import Click
from napari_ritm.inference.window import (
    LocalProbs,
    WindowPredictor,
    grow_window,
    square_window,
    touches_inner_border,
)
from napari_ritm.training.data import load_split

RESULTS = RESULTS_DIR / "window_rule.json"
SETS = ("dsb2018", "coelho_nuclei", "stardist_nuclei2d", "isbi2012_em", "usiigaci_phase",
        "emps_particles", "weizmann_horse")
#: candidate settings: (net_size, first_window, min_crop_size)
CANDIDATES = [(256, 96, 96), (256, 128, 128), (256, 192, 128), (256, 256, 128),
              (192, 96, 96), (192, 128, 128)]
MAX_WINDOW = 1024


def val_objects(per_set: int, min_area: int = 30):
    """(set name, Sample) pairs: up to ``per_set`` val objects of each set, spread over images."""
    split = load_split(SPLIT)["sets"]
    out = []
    for name in SETS:
        names = set(split[name]["val"])
        ds = InstanceDataset(DATA / name, names=names, min_area=min_area,
                             max_objects_per_image=max(1, -(-per_set // len(names))))
        samples = list(ds)
        picks = np.unique(np.linspace(0, len(samples) - 1, min(per_set, len(samples))).round())
        out.extend((name, samples[int(i)]) for i in picks)
    return out


def centre_click(gt: np.ndarray) -> Click:
    """The first click of the NoC clicker: the innermost object pixel."""
    clicker = Clicker(gt)
    clicker.next_click(np.zeros(gt.shape, bool))
    return clicker.clicks[0]


def through_network_grid(mask: np.ndarray, net_size: int, min_side: int) -> np.ndarray:
    """``mask`` (h, w) taken through the predictor's geometry: resize to the network input,
    the stride-4 output grid, and back; returns probabilities (h, w)."""
    h, w = mask.shape
    scale = net_size / max(h, w, min_side)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = torch.from_numpy(mask.astype(np.float32))[None, None]
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    grid = F.avg_pool2d(x, 4, ceil_mode=True)
    x = F.interpolate(grid, size=size, mode="bilinear", align_corners=True)
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=True)[0, 0].numpy()


def geometry(objects, net_size: int, first: int, min_crop: int) -> dict:
    rows = {}
    for name, sample in objects:
        gt = sample.gt.astype(bool)
        click = centre_click(sample.gt)
        hw = gt.shape
        roi, passes = square_window(click.y, click.x, first, hw), 1
        while True:
            local = LocalProbs(roi, gt[roi[0]:roi[1] + 1, roi[2]:roi[3] + 1].astype(np.float32), hw)
            side = max(roi[1] - roi[0] + 1, roi[3] - roi[2] + 1)
            if side >= MAX_WINDOW or not touches_inner_border(local, 0.5):
                break
            bigger = grow_window(roi, min(2.0, MAX_WINDOW / side), hw)
            if bigger == roi:
                break
            roi, passes = bigger, passes + 1
        probs = through_network_grid(local.probs > 0.5, net_size, min_crop)
        pred = LocalProbs(roi, probs, hw).full() > 0.5
        rows.setdefault(name, []).append((get_iou(gt, pred), passes, side))
    return _summary(rows, ("ceiling_iou", "passes", "window"))


def model_run(predictor: WindowPredictor, objects, clicks: int = 3) -> dict:
    rows, previous = {}, None
    for name, sample in objects:
        gt = sample.gt
        if sample.image is not previous:
            predictor.set_image(sample.image)
            previous = sample.image
        predictor.reset()
        clicker, pred, ious, times, passes = Clicker(gt), np.zeros(gt.shape, bool), [], [], []
        for _ in range(clicks):
            clicker.next_click(pred)
            start = time.perf_counter()
            probs = predictor.predict(list(clicker.clicks))
            times.append(time.perf_counter() - start)
            passes.append(predictor.passes)
            pred = probs > 0.49
            ious.append(get_iou(gt, pred))
        rows.setdefault(name, []).append((ious[0], ious[-1], passes[0], *times))
    out = _summary({k: [r[:3] for r in v] for k, v in rows.items()},
                   ("iou1", f"iou{clicks}", "first_click_passes"))
    all_times = [t for v in rows.values() for r in v for t in r[3:]]
    out["all"]["median_s_per_click"] = round(float(np.median(all_times)), 4)
    return out


def _summary(rows: dict, fields: tuple[str, ...]) -> dict:
    def stats(values):
        a = np.asarray(values, dtype=float)
        out = {f"mean_{f}": round(float(a[:, i].mean()), 4) for i, f in enumerate(fields)}
        if "ceiling_iou" in fields:
            out["share_ceiling_ge_0.90"] = round(float((a[:, 0] >= 0.90).mean()), 4)
            out["max_window"] = int(a[:, 2].max())
        out["objects"] = len(a)
        return out

    summary = {name: stats(v) for name, v in rows.items()}
    summary["all"] = stats([r for v in rows.values() for r in v])
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="also run the predictor with this model")
    parser.add_argument("--per-set", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared sets not found at {DATA}", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    objects = val_objects(args.per_set)
    sizes = [max(np.ptp(np.nonzero(s.gt)[0]), np.ptp(np.nonzero(s.gt)[1])) + 1 for _, s in objects]
    results = {"benchmark": "window_rule", "objects": len(objects),
               "object_size_px": {"min": int(min(sizes)), "median": float(np.median(sizes)),
                                  "max": int(max(sizes))},
               "max_window": MAX_WINDOW, "torch_threads": 1,
               "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
               "model": args.model, "settings": []}
    net = None
    if args.model:
        from napari_ritm import load_model

        net = load_model(args.model).eval()
    for net_size, first, min_crop in CANDIDATES:
        entry = {"net_size": net_size, "first_window": first, "min_crop_size": min_crop,
                 "geometry": geometry(objects, net_size, first, min_crop)}
        if net is not None:
            predictor = WindowPredictor(net, net_size=net_size, first_window=first,
                                        min_crop_size=min_crop, max_window=MAX_WINDOW)
            entry["model"] = model_run(predictor, objects)
        results["settings"].append(entry)
        g, m = entry["geometry"]["all"], entry.get("model", {}).get("all", {})
        print(f"net {net_size} first {first} min {min_crop}: ceiling {g['mean_ceiling_iou']:.3f} "
              f"(>=0.90 {g['share_ceiling_ge_0.90']:.2f}), passes {g['mean_passes']:.2f}"
              + (f" | IoU@1 {m['mean_iou1']:.3f} IoU@3 {m['mean_iou3']:.3f} "
                 f"{m['median_s_per_click'] * 1000:.0f} ms/click" if m else ""), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
