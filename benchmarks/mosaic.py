"""Does a click cost and give the same on a large image? A 2048^2 mosaic of val images.

For each shared set, 16 val images (repeated when the set has fewer) are cut or zero-padded to
512 x 512 tiles and laid out 4 x 4 into one 2048 x 2048 mosaic. Up to ``--per-tile`` objects of
each tile (whole objects only, spread over its ids) are segmented twice with the NoC clicker for
3 clicks: once in the tile itself (a 512^2 image) and once at the same place in the mosaic.
Reports per set and overall the mean IoU after 1 and 3 clicks in both, and the median seconds
per click (one torch thread), for the predictor of ``--mode`` (default: the window mode).

    python benchmarks/mosaic.py [--model default] [--mode window] [--per-tile 4]

Writes benchmarks/results/mosaic.json.
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
from common import DATA, SPLIT
from common import RESULTS as RESULTS_DIR

from napari_ritm.evaluation.clicker import Clicker
from napari_ritm.evaluation.folders import image_label_pairs, read_array, to_rgb01
from napari_ritm.evaluation.noc import get_iou
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.zoo import load_model
from napari_ritm.training.data import load_split

RESULTS = RESULTS_DIR / "mosaic.json"
SETS = ("dsb2018", "coelho_nuclei", "stardist_nuclei2d", "isbi2012_em", "usiigaci_phase",
        "emps_particles")
TILE, GRID = 512, 4


def tiles(set_name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """16 (image (512, 512, 3) float32 in [0, 1], labels (512, 512) int32) tiles of val images,
    each the centre of its image (zero-padded when smaller)."""
    names = set(load_split(SPLIT)["sets"][set_name]["val"])
    pairs = [(i, lab) for i, lab in image_label_pairs(DATA / set_name) if i.stem in names]
    out = []
    for i in range(GRID * GRID):
        image_path, label_path = pairs[i % len(pairs)]
        image, labels = to_rgb01(read_array(image_path)), read_array(label_path).astype(np.int32)
        tile, lab = np.zeros((TILE, TILE, 3), np.float32), np.zeros((TILE, TILE), np.int32)
        h, w = min(TILE, labels.shape[0]), min(TILE, labels.shape[1])
        top, left = (labels.shape[0] - h) // 2, (labels.shape[1] - w) // 2
        tile[:h, :w] = image[top : top + h, left : left + w]
        lab[:h, :w] = labels[top : top + h, left : left + w]
        out.append((tile, lab))
    return out


def whole_objects(labels: np.ndarray, per_tile: int, min_area: int = 30) -> list[int]:
    """Up to ``per_tile`` ids of objects that do not touch the tile border, spread over ids."""
    ids, areas = np.unique(labels[labels > 0], return_counts=True)
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])))
    ok = [int(k) for k, a in zip(ids, areas) if a >= min_area and k not in border]
    picks = np.unique(np.linspace(0, len(ok) - 1, min(per_tile, len(ok))).round().astype(int))
    return [ok[i] for i in picks] if ok else []


def three_clicks(predictor, gt: np.ndarray) -> tuple[list[float], list[float]]:
    clicker, pred, ious, times = Clicker(gt), np.zeros(gt.shape, bool), [], []
    predictor.reset()
    for _ in range(3):
        clicker.next_click(pred)
        start = time.perf_counter()
        probs = predictor.predict(list(clicker.clicks))
        times.append(time.perf_counter() - start)
        pred = probs > 0.49
        ious.append(get_iou(gt, pred))
    return ious, times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--mode", default="window")
    parser.add_argument("--per-tile", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared sets not found at {DATA}", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    predictor = make_predictor(load_model(args.model).eval(), args.mode)
    report = {"benchmark": "mosaic", "model": args.model, "mode": args.mode, "tile": TILE,
              "mosaic": TILE * GRID, "clicks": 3, "torch_threads": 1,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "sets": {}}
    rows_all = []
    for set_name in SETS:
        parts = tiles(set_name)
        mosaic = np.zeros((TILE * GRID, TILE * GRID, 3), np.float32)
        for i, (image, _) in enumerate(parts):
            r, c = divmod(i, GRID)
            mosaic[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = image
        rows = []
        for i, (image, labels) in enumerate(parts):
            r, c = divmod(i, GRID)
            for k in whole_objects(labels, args.per_tile):
                gt = (labels == k).astype(np.int32)
                predictor.set_image(image)
                own, t_own = three_clicks(predictor, gt)
                big = np.zeros(mosaic.shape[:2], np.int32)
                big[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = gt
                predictor.set_image(mosaic)
                in_mosaic, t_big = three_clicks(predictor, big)
                rows.append((own[0], own[2], in_mosaic[0], in_mosaic[2], *t_own, *t_big))
        rows_all.extend(rows)
        report["sets"][set_name] = _summary(rows)
        s = report["sets"][set_name]
        print(f"{set_name}: {s['objects']} objects, IoU@1 {s['iou1_own']:.3f} / "
              f"{s['iou1_mosaic']:.3f}, IoU@3 {s['iou3_own']:.3f} / {s['iou3_mosaic']:.3f}, "
              f"{1000 * s['median_s_own']:.0f} / {1000 * s['median_s_mosaic']:.0f} ms per click",
              flush=True)
    report["all"] = _summary(rows_all)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"all: {report['all']}\nwrote {args.out}")
    return 0


def _summary(rows: list[tuple]) -> dict:
    a = np.asarray(rows, dtype=float)
    out = {"objects": len(a)}
    for i, name in enumerate(("iou1_own", "iou3_own", "iou1_mosaic", "iou3_mosaic")):
        out[name] = round(float(a[:, i].mean()), 4)
    change = np.abs(a[:, [2, 3]] - a[:, [0, 1]]).max()
    out["max_abs_iou_change_per_object"] = round(float(change), 4)
    out["median_s_own"] = round(float(np.median(a[:, 4:7])), 4)
    out["median_s_mosaic"] = round(float(np.median(a[:, 7:10])), 4)
    out["time_ratio_mosaic_vs_own"] = round(out["median_s_mosaic"] / out["median_s_own"], 3)
    return out


if __name__ == "__main__":
    sys.exit(main())
