"""IoU after one click on every val object of a set, not eval_dev.py's sample of them.

eval_dev.py runs the full NoC protocol (up to 20 clicks) on a few objects per image (43 of
dsb2018's 649 val objects), so its mean IoU after one click has a standard error near 0.03:
too coarse to tell 0.797 from 0.80, or to choose between two models by their first click. This
clicks once, at the centre of each val object of at least 30 pixels (the protocol's first
click), in the widget's default mode (window, mirror averaging, one thread), and keeps each
object's IoU, so that models are compared object by object. Results go into
``benchmarks/results/first_click_all.json`` (``objects``: each set's objects, by image and
area; ``runs``: one per model, merged with the runs already there, each compared with the
file's first run, object by object: ``default v2.1``, the default model before v2.2).
``--subset val_select`` / ``val_report`` clicks the objects of one half of the val images
(``first_click_all_<subset>.json``): models are chosen on val_select, reported on val_report.

Per object it also keeps the seconds of the click and the window predictor's network passes
(1, or more where the window grew or the second look ran); ``--no-second-look`` runs the
predictor without the second look (runs named "<model> (no second look)"), so that what the
second look changes, in IoU and in time, is read object by object.

    python benchmarks/first_click_all.py --models default ../runs/v7/avg.pth
    python benchmarks/first_click_all.py --subset val_select --no-second-look --sets emps_particles
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import numpy as np
import torch
from common import DATA, RESULTS, machine, val_dataset

from napari_ritm.evaluation.noc import evaluate_sample
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.zoo import load_model

NUCLEI = ("dsb2018", "coelho_nuclei", "stardist_nuclei2d")


def results_path(subset: str):
    """The results file of ``subset``: first_click_all.json for all val images."""
    return RESULTS / ("first_click_all.json" if subset == "val" else
                      f"first_click_all_{subset}.json")


def first_click_ious(net, name: str, subset: str, **settings) -> dict[str, list]:
    """One click on each val object of ``name`` in ``subset`` (in the dataset's order), with
    the window predictor's ``settings``: per object its IoU, image, area (pixels), seconds and
    network passes."""
    ds = val_dataset(name, subset, min_area=30)
    predictor = make_predictor(net, "window", **settings)
    out = {"ious": [], "images": [], "areas": [], "seconds": [], "passes": []}
    for sample in ds:
        start = time.perf_counter()
        result = evaluate_sample(predictor, sample.image, sample.gt, max_clicks=1, stop_iou=None)
        out["seconds"].append(round(time.perf_counter() - start, 4))
        out["passes"].append(predictor.passes)
        out["ious"].append(round(float(result.ious[0]), 4))
        out["images"].append(sample.image_name)
        out["areas"].append(int(sample.gt.sum()))
    return out


def seconds_by_passes(seconds: list[float], passes: list[int]) -> dict[str, dict]:
    """How many clicks ran 1, 2, ... network passes, and their median seconds."""
    p = np.asarray(passes)
    return {str(k): {"clicks": int((p == k).sum()),
                     "median_s": round(float(np.median(np.asarray(seconds)[p == k])), 3)}
            for k in sorted(set(passes))}


#: object areas (pixels) the summary splits the objects by: 30-100 is a diameter of 6-11 px
AREA_BINS = (30, 100, 200, 400, 800)


def summary(ious: list[float], images: list[str], areas: list[int],
            base: list[float] | None) -> dict:
    """Mean and its standard error, the mean of the images' means (each image counts once, as
    eval_dev.py's few objects per image do), the mean by object area; with ``base`` (the same
    objects), the paired difference."""
    x = np.asarray(ious)
    names = np.asarray(images)
    out = {"objects": len(x), "images": len(set(images)), "iou1": round(float(x.mean()), 4),
           "se": round(float(x.std(ddof=1) / np.sqrt(len(x))), 4),
           "iou1_per_image": round(float(np.mean([x[names == n].mean()
                                                  for n in set(images)])), 4),
           "below_0.5": int((x < 0.5).sum())}
    a = np.asarray(areas)
    edges = (*AREA_BINS, None)
    out["by_area"] = {f"{lo}-{hi or ''}": {"objects": int(m.sum()),
                                           "iou1": round(float(x[m].mean()), 4)}
                      for lo, hi in itertools.pairwise(edges)
                      if (m := (a >= lo) & (a < (hi or np.inf))).any()}
    if base is not None and len(base) == len(x):
        d = x - np.asarray(base)
        out["vs_first_run"] = {"mean": round(float(d.mean()), 4),
                               "se": round(float(d.std(ddof=1) / np.sqrt(len(d))), 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default"],
                        help="registered names or .pth paths (default: default)")
    parser.add_argument("--sets", nargs="+", default=list(NUCLEI))
    parser.add_argument("--no-flip", dest="flip", action="store_false",
                        help="without mirror averaging (runs named '<model> (no flip)')")
    parser.add_argument("--no-second-look", dest="second_look", action="store_false",
                        help="without the window predictor's second look (runs named "
                             "'<model> (no second look)')")
    parser.add_argument("--subset", choices=("val", "val_select", "val_report"), default="val",
                        help="all val images (default) or one half of them")
    args = parser.parse_args(argv)
    out_path = results_path(args.subset)
    settings = {"flip": args.flip, **({} if args.second_look else {"second_look": 0})}
    suffix = "".join(s for s, on in ((" (no flip)", not args.flip),
                                     (" (no second look)", not args.second_look)) if on)
    if not DATA.is_dir():
        print(f"{DATA} not found (set NAPARI_RITM_SHARED)", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    set_objects, scored = {}, {}
    for model in args.models:
        name = model + suffix
        net = load_model(model)
        run = scored.setdefault(name, {"sets": {}})
        for set_name in args.sets:
            got = first_click_ious(net, set_name, args.subset, **settings)
            if not got["ious"]:
                print(f"{set_name}: no {args.subset} object", flush=True)
                continue
            set_objects[set_name] = {"images": got["images"], "areas": got["areas"]}
            run["sets"][set_name] = {
                "ious": got["ious"], "median_s": round(float(np.median(got["seconds"])), 3),
                "seconds": got["seconds"], "passes": got["passes"],
                "by_passes": seconds_by_passes(got["seconds"], got["passes"])}
            print(name, set_name, f"IoU@1 {np.mean(got['ious']):.4f} on {len(got['ious'])} "
                  "objects", flush=True)
        run["date"], run["machine"] = time.strftime("%Y-%m-%d %H:%M"), machine()
    # read the file only now, so that runs written meanwhile by another call are kept
    result = json.loads(out_path.read_text()) if out_path.is_file() else {
        "benchmark": "first_click_all", "protocol": f"one click at the centre of each "
        f"{args.subset} object of >= 30 px (shared_split.json), window mode, threshold 0.49",
        "objects": {}, "runs": {}}
    result["objects"].update(set_objects)
    for name, run in scored.items():
        kept = result["runs"].setdefault(name, {"sets": {}})
        kept["sets"].update(run["sets"])
        kept["date"], kept["machine"] = run["date"], run["machine"]
    first = next(iter(result["runs"].values()))
    for run in result["runs"].values():
        for set_name, entry in run["sets"].items():
            base = first["sets"].get(set_name, {}).get("ious") if run is not first else None
            objects = result["objects"][set_name]
            entry["summary"] = summary(entry["ious"], objects["images"], objects["areas"], base)
    out_path.write_text(json.dumps(result, indent=1))
    for name, run in result["runs"].items():
        print(name, {s: e["summary"] for s, e in run["sets"].items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
