"""Every nucleus of the plugin's sample image, model against model, with paired differences.

The sample image (``File > Open Sample > napari-ritm``) is stardist_nuclei2d, the one image no
model here trains on. eval_dev.py scores 30 of its nuclei, too few to tell two models apart by
less than about a click. This script scores all of them (124 of at least 30 pixels) in the
window mode with 20 clicks each, never stopping early, and gives each model's NoC@85 / NoC@90,
mean IoU per click, the share of nuclei at IoU 0.8 within three clicks, what its first masks
get wrong (:func:`score`), and its per-nucleus difference from a base model (``--base``, scored
now or in an earlier call; the first of ``--models`` by default): mean and standard error.
Results go to ``benchmarks/results/sample_image.json`` (kept across calls; a model's entry is
replaced when it is scored again, the differences are recomputed).

    python benchmarks/sample_image.py --models default runs/avg.pth
    python benchmarks/sample_image.py --models runs/other.pth --base default
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from common import DATA, RESULTS, machine, paired_noc
from scipy import ndimage as ndi

from napari_ritm.evaluation.datasets import InstanceDataset
from napari_ritm.evaluation.folders import image_label_pairs, read_array
from napari_ritm.evaluation.noc import evaluate_sample, get_iou, noc
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.zoo import load_model

SET = "stardist_nuclei2d"
MIN_AREA = 30
CLICKS = 20


def score(model: str) -> tuple[list[list[float]], dict]:
    """IoU after each of CLICKS clicks for every nucleus of the sample image, and what its
    first masks (one click) get wrong: precision and recall, IoU when shrunk by one pixel
    (binary erosion, 4-neighbours), and the share of nuclei whose first mask covers at least a
    quarter of another annotated nucleus (``takes_neighbour``)."""
    predictor = make_predictor(load_model(model), "window")
    ((_, label_path),) = image_label_pairs(DATA / SET)
    labels = read_array(label_path)
    ious, first = [], []
    for i, s in enumerate(InstanceDataset(DATA / SET, min_area=MIN_AREA)):
        ious.append([round(v, 4) for v in evaluate_sample(
            predictor, s.image, s.gt, max_clicks=CLICKS, stop_iou=None, new_image=i == 0).ious])
        mask = evaluate_sample(predictor, s.image, s.gt, max_clicks=1, stop_iou=None,
                               new_image=False).probs > 0.49
        gt = s.gt == 1
        hit = np.count_nonzero(mask & gt)
        others, covered = np.unique(labels[mask & ~gt], return_counts=True)
        sizes = {k: np.count_nonzero(labels == k) for k in others[others > 0]}
        first.append((hit / max(1, mask.sum()), hit / gt.sum(),
                      get_iou(s.gt, ndi.binary_erosion(mask)),
                      any(c >= sizes[k] / 4 for k, c in zip(others, covered) if k > 0)))
    f = np.asarray(first, dtype=float).mean(0)
    keys = ("precision", "recall", "iou_eroded_1px", "takes_neighbour")
    return ious, {k: round(float(v), 4) for k, v in zip(keys, f)}


def summary(ious: list[list[float]]) -> dict:
    a = np.asarray(ious)
    return {"objects": len(a),
            "NoC@85": float(np.mean([noc(i, 0.85, CLICKS) for i in ious])),
            "NoC@90": float(np.mean([noc(i, 0.90, CLICKS) for i in ious])),
            "miou_per_click": a.mean(0).round(4).tolist(),
            "share_0.8_within_3": float((a[:, :3].max(1) >= 0.8).mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default"],
                        help="registered names or .pth paths to score")
    parser.add_argument("--base", help="the base of the paired differences, scored now or "
                        "before (default: the first of --models)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "sample_image.json")
    args = parser.parse_args(argv)
    if not (DATA / SET).is_dir():
        print(f"{DATA / SET} not found (set NAPARI_RITM_SHARED)", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": {}}
    base_name = args.base or args.models[0]
    if base_name not in {*results["runs"], *args.models}:
        print(f"--base {base_name}: not scored in {args.out}; add it to --models", file=sys.stderr)
        return 1
    results.update(benchmark="sample_image", set=SET, machine=machine(),
                   protocol=f"every object of at least {MIN_AREA} px, window mode, {CLICKS} "
                   "clicks, no early stop", base=base_name)
    for model in args.models:
        ious, first = score(model)
        results["runs"][model] = {**summary(ious), "first_mask": first, "ious": ious}
        s = results["runs"][model]
        print(f"{model}: NoC@85 {s['NoC@85']:.2f}, NoC@90 {s['NoC@90']:.2f}, IoU@1 "
              f"{s['miou_per_click'][0]:.3f}, at 0.8 within 3 clicks {s['share_0.8_within_3']:.2f}"
              f", first mask {first}", flush=True)
    base = results["runs"][base_name]["ious"]
    for model, run in results["runs"].items():
        run["vs_base"] = (paired_noc(run["ious"], base, max_clicks=CLICKS)
                          if len(run["ious"]) == len(base) else None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, separators=(",", ":")) + "\n")  # 2,480 IoUs per model
    for model in (m for m in args.models if m != base_name):
        v = results["runs"][model]["vs_base"]
        n85, n90 = v["NoC@85"], v["NoC@90"]
        print(f"{model} - {base_name}: NoC@85 {n85['mean']:+.2f} ± {n85['se']:.2f}, "
              f"NoC@90 {n90['mean']:+.2f} ± {n90['se']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
