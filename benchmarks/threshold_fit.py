"""Does a threshold fitted to a few of the user's labels match their outlines on other objects?

:func:`napari_ritm.evaluation.threshold.fit_threshold` clicks once on each of the user's objects
and picks the threshold whose masks match them best. Two questions, one thread, the window mode
with mirror averaging (the widget's defaults), results in
``benchmarks/results/threshold_fit.json`` (replaced when run again):

- **The sample image** (stardist_nuclei2d, outlined tighter than the training sets): 20 of its
  nuclei are the user's labels (the seeded choice of benchmarks/adapt_sample_image.py, seeds
  ``--seeds``), the fit runs on them, and every other nucleus is scored at the default threshold
  and at the fitted one (20 clicks, no early stop, as adapt_sample_image.py scores them).
- **The dev sets** (eval_dev.py's val objects and protocol: 20 clicks, stop at IoU 0.90), whose
  outlines the model learnt from: the val images of each set are split in two halves (every
  other image), the fit runs on the objects of one half (at most 40; images the model never
  saw, as a user's are: its own train images would favour the outlines it memorised) and
  eval_dev's objects of the other half are scored at its fitted threshold, and the other way
  round. Pooled, the 0.49 figures are eval_dev's; the question is whether the fit leaves
  them alone where the outlines already match.

    python benchmarks/threshold_fit.py [--seeds 0 1 2] [--sets dsb2018 ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import DATA, RESULTS, SPLIT, machine, set_dir
from eval_dev import SETS

from napari_ritm.commands.evaluate import split_names
from napari_ritm.evaluation.datasets import InstanceDataset
from napari_ritm.evaluation.folders import image_label_pairs, read_array, to_rgb01
from napari_ritm.evaluation.noc import (
    DatasetResult,
    evaluate_dataset,
    evaluate_sample,
    miou_per_click,
    noc,
)
from napari_ritm.evaluation.threshold import fit_threshold
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.zoo import load_model
from napari_ritm.training.data import read_folder

SAMPLE_SET = "stardist_nuclei2d"
MIN_AREA = 30
USER_OBJECTS = 20
FIT_OBJECTS = 40
DEFAULT = 0.49


def _figures(ious: list[list[float]]) -> dict:
    return {"objects": len(ious),
            "NoC@85": round(float(np.mean([noc(i, 0.85) for i in ious])), 3),
            "NoC@90": round(float(np.mean([noc(i, 0.90) for i in ious])), 3),
            "IoU@1": round(float(miou_per_click(ious)[0]), 4)}


def _fit_entry(fit) -> dict:
    return {"threshold": fit.threshold, "objects": fit.objects,
            "iou1_at_default": round(fit.iou_current, 4), "iou1_at_fitted": round(fit.iou, 4),
            "table": {f"{t:.2f}": round(v, 4) for t, v in fit.table.items()}}


def sample_image(predictor, seed: int) -> dict:
    """Fit on 20 nuclei of the sample image, score the others at 0.49 and at the fit."""
    (sample,) = read_folder(DATA / SAMPLE_SET)
    ids, areas = np.unique(sample.labels[sample.labels > 0], return_counts=True)
    ids = ids[areas >= MIN_AREA]
    mine = np.random.default_rng(seed).choice(ids, size=USER_OBJECTS, replace=False)
    user = np.where(np.isin(sample.labels, mine), sample.labels,
                    np.where(sample.labels > 0, -1, 0)).astype(np.int32)
    start = time.perf_counter()
    fit = fit_threshold(predictor, [replace(sample, labels=user)], min_area=MIN_AREA)
    seconds = time.perf_counter() - start
    ((image_path, _),) = image_label_pairs(DATA / SAMPLE_SET)
    image = to_rgb01(read_array(image_path))  # as the evaluation reads it
    others = [k for k in ids if k not in mine]
    scored = {}
    for name, t in (("default", DEFAULT), ("fitted", fit.threshold)):
        ious = [evaluate_sample(predictor, image, (sample.labels == k).astype(np.int32),
                                stop_iou=None, pred_thresh=t, new_image=n == 0).ious
                for n, k in enumerate(others)]
        scored[name] = {"threshold": t, **_figures(ious)}
    return {"seed": seed, "user_objects": USER_OBJECTS, "fit": _fit_entry(fit),
            "fit_seconds": round(seconds, 2), "other_nuclei": scored}


def dev_set(predictor, name: str) -> dict:
    """Two-fold over the val images: fit on one half's objects, score the other half's."""
    folder = set_dir(name)
    val_names = sorted(split_names(SPLIT, "val", [folder])[0])
    halves = (set(val_names[0::2]), set(val_names[1::2]))
    per_image, limit = SETS[name]
    scored = list(InstanceDataset(folder, max_objects_per_image=per_image, min_area=MIN_AREA,
                                  limit=limit, names=set(val_names)))
    images = read_folder(folder)
    folds, ious = [], {"default": [], "fitted": []}
    for fit_on, score_on in (halves, halves[::-1]):
        fit = fit_threshold(predictor, [s for s in images if s.name in fit_on],
                            min_area=MIN_AREA, max_objects=FIT_OBJECTS)
        objects = [s for s in scored if Path(s.image_name).stem in score_on]
        for label, t in (("default", DEFAULT), ("fitted", fit.threshold)):
            result = evaluate_dataset(predictor, objects, DatasetResult(name), pred_thresh=t)
            ious[label] += [s["ious"] for s in result.samples]
        folds.append({"fit": _fit_entry(fit), "scored_objects": len(objects)})
    return {"folds": folds, "val": {k: _figures(v) for k, v in ious.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2],
                        help="which nuclei of the sample image are the user's")
    parser.add_argument("--sets", nargs="*", default=[s for s in SETS if s != SAMPLE_SET])
    parser.add_argument("--out", type=Path, default=RESULTS / "threshold_fit.json")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"{DATA} not found (set NAPARI_RITM_SHARED)", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    predictor = make_predictor(load_model(args.model), "window")
    result = {"benchmark": "threshold_fit", "model": args.model,
              "weights_sha256": predictor.info["sha256"], "mode": "window",
              "flip": bool(predictor.flip), "default_threshold": DEFAULT,
              "sample_image": [], "dev_sets": {}}
    result["machine"] = machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        entry = sample_image(predictor, seed)
        result["sample_image"].append(entry)
        args.out.write_text(json.dumps(result, indent=1))  # after each part: a crash keeps it
        print(f"sample image, seed {seed}: fit {entry['fit']['threshold']:.2f} "
              f"({entry['fit_seconds']} s); others {entry['other_nuclei']}", flush=True)
    for name in args.sets:
        entry = dev_set(predictor, name)
        result["dev_sets"][name] = entry
        args.out.write_text(json.dumps(result, indent=1))
        fits = " and ".join(f"{f['fit']['threshold']:.2f}" for f in entry["folds"])
        print(f"{name}: fits {fits}; val {entry['val']}", flush=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
