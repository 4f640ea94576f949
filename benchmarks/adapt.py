"""Does adapting the model to 20 of the user's objects help on the rest of their images?

The base model is one that never saw the sets adapted to: by default the held-out base
(``recipes/h18s_holdout_cpu.sh``: the v2 recipe without usiigaci_phase,
emps_particles and coelho_nuclei); ``--model runs/holdout_isbi/model.pth --sets isbi2012_em
--known dsb2018 weizmann_horse coelho_nuclei usiigaci_phase emps_particles`` measures the second
base (``recipes/h18s_holdout_isbi_cpu.sh``, every set but isbi2012_em). For each set adapted
to, 20 objects of one train image are the user's labels (the image's other objects are ignored,
as unlabelled);
:func:`napari_ritm.training.adapt.adapt` fine-tunes on them on one thread within a time budget.
Then NoC@85 / NoC@90 and the IoU after one click, before and after, in the window mode:

- on the val images of the same set (other images than the one adapted on);
- on the val images of the sets the model was trained on (it must not get worse there).

    python benchmarks/adapt.py [--model runs/holdout/model.pth] [--label NAME] [--blend 0.3] ...

``--images N`` spreads the 20 objects over the first N train images instead; ``--image NAME``
picks the image; ``--layers``, ``--scale-jitter``, ``--lr`` ... set the adaptation's options.
The adaptation rehearses on the images shipped in the package, as the product does;
``--rehearsal N [--rehearse-on SETS]`` uses N train images of each of those sets instead,
``--no-rehearsal`` none.

Adds one entry per set to benchmarks/results/adapt.json under ``runs`` (an earlier entry with the
same model, label and set is replaced), so settings can be compared side by side.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import DATA, RESULTS, SPLIT, machine, paired_noc

from napari_ritm.evaluation.datasets import InstanceDataset
from napari_ritm.evaluation.noc import DatasetResult, evaluate_dataset
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.zoo import load_model
from napari_ritm.training.adapt import AdaptOptions, adapt
from napari_ritm.training.data import load_split, read_folder

#: every set scored: (objects per val image, at most objects) on its val images
SIZES = {"usiigaci_phase": (8, 56), "emps_particles": (1, 60), "coelho_nuclei": (4, 60),
         "dsb2018": (6, 54), "isbi2012_em": (12, 48), "weizmann_horse": (1, 60)}
#: sets adapted to by default (the held-out base never saw them)
NEW_SETS = ("usiigaci_phase", "emps_particles", "coelho_nuclei")
#: sets the held-out base was trained on, scored before and after (``--known``)
KNOWN_SETS = ("dsb2018", "isbi2012_em", "weizmann_horse")
HOLDOUT_BASE = Path("runs/holdout/model.pth")


def user_labels(set_name: str, count: int, image: str | None = None, images: int = 1,
                seed: int = 0) -> list:
    """``count`` labelled objects spread evenly over ``images`` train images of ``set_name``
    (``image``, else the first in name order with enough objects); the images' other objects
    are ignored (-1), as unlabelled."""
    train_names = set(load_split(SPLIT)["sets"][set_name]["train"])
    shares = [count // images + (k < count % images) for k in range(images)]
    chosen = []
    for sample in read_folder(DATA / set_name):
        ids = np.unique(sample.labels[sample.labels > 0])
        if image is not None and sample.name != image:
            continue
        share = shares[len(chosen)]
        if sample.name in train_names and len(ids) >= share:
            keep = np.random.default_rng(seed).choice(ids, size=share, replace=False)
            labels = np.where(np.isin(sample.labels, keep), sample.labels,
                              np.where(sample.labels > 0, -1, 0))
            chosen.append(replace(sample, labels=labels.astype(np.int32)))
            if len(chosen) == images:
                return chosen
    raise ValueError(f"no {images} train image(s) of {set_name} ({image or 'any'}) with "
                     f"{count} objects")


def train_images(set_name: str, count: int) -> list:
    """The first ``count`` train images of ``set_name`` (name order), all objects labelled."""
    if count <= 0:
        return []
    train_names = set(load_split(SPLIT)["sets"][set_name]["train"])
    return [s for s in read_folder(DATA / set_name) if s.name in train_names][:count]


def median_side(samples: list) -> float:
    """Median square root of the labelled objects' areas in ``samples``, in pixels."""
    areas = np.concatenate([np.unique(s.labels[s.labels > 0], return_counts=True)[1]
                            for s in samples])
    return round(float(np.median(np.sqrt(areas))), 1)


def score(net, set_name: str, per_image: int, limit: int) -> dict:
    """NoC@85/90 and IoU@1 of ``net`` (window mode) on the val images of ``set_name``."""
    names = set(load_split(SPLIT)["sets"][set_name]["val"])
    data = InstanceDataset(DATA / set_name, names=names, min_area=30,
                           max_objects_per_image=per_image, limit=limit)
    result = DatasetResult(set_name, max_clicks=20)
    evaluate_dataset(make_predictor(net, "window"), data, result)
    out = result.to_json()
    iou1 = float(np.mean([s["ious"][0] for s in out["samples"]]))
    return {"objects": out["objects"], "NoC@85": out["NoC@85"], "NoC@90": out["NoC@90"],
            "IoU@1": round(iou1, 4), "ious": [s["ious"] for s in out["samples"]]}


def paired_change(before: dict, after: dict) -> dict:
    """Mean and standard error of the per-object change in NoC@85 (the same objects)."""
    change = paired_noc(after["ious"], before["ious"], (0.85,))["NoC@85"]
    return {k: round(v, 3) for k, v in change.items()}


def without_lists(scores: dict) -> dict:
    return {k: v for k, v in scores.items() if k != "ious"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(HOLDOUT_BASE),
                        help="base model (default: the held-out base; train it with "
                             "recipes/h18s_holdout_cpu.sh)")
    parser.add_argument("--label", default="defaults", help="name of this setting in the JSON")
    parser.add_argument("--sets", nargs="+", default=list(NEW_SETS), choices=list(SIZES),
                        help="sets adapted to, one at a time (the base must not know them)")
    parser.add_argument("--known", nargs="+", default=list(KNOWN_SETS), choices=list(SIZES),
                        help="sets the base was trained on, scored before and after")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--images", type=int, default=1,
                        help="spread the objects over this many train images")
    parser.add_argument("--image", default=None,
                        help="the train image adapted on (one set only; default: the first "
                             "with enough objects)")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of training")
    parser.add_argument("--backbone-lr-mult", type=float, default=1.0)
    parser.add_argument("--blend", type=float, default=AdaptOptions.blend,
                        help="share of the weight change kept")
    parser.add_argument("--scale-jitter", type=float, nargs=2, default=AdaptOptions.scale_jitter,
                        metavar=("LOW", "HIGH"), help="range of the object scale factor")
    parser.add_argument("--rehearsal", type=int, default=0, metavar="N",
                        help="mix N train images of each known set into the adaptation "
                             "(half of each batch) instead of the shipped rehearsal images")
    parser.add_argument("--no-rehearsal", dest="bundled", action="store_false",
                        help="no rehearsal images at all (without --rehearsal)")
    parser.add_argument("--rehearse-on", nargs="+", default=None, choices=list(SIZES),
                        metavar="SET", help="the sets --rehearsal draws from (default: --known)")
    parser.add_argument("--layers", choices=("all", "norms"), default=AdaptOptions.layers,
                        help="the weights trained")
    parser.add_argument("--no-freeze-norm", dest="freeze_norm", action="store_false",
                        help="let BatchNorm statistics follow the new images")
    parser.add_argument("--out", type=Path, default=RESULTS / "adapt.json")
    args = parser.parse_args(argv)
    if args.image is not None and (len(args.sets) != 1 or args.images != 1):
        parser.error("--image needs exactly one of --sets and one image")
    torch.set_num_threads(1)
    net = load_model(args.model)
    known = {name: score(net, name, *SIZES[name]) for name in args.known}
    rehearse_on = args.known if args.rehearse_on is None else args.rehearse_on
    rehearsal = [sample for name in rehearse_on for sample in train_images(name, args.rehearsal)]
    entries = []
    for set_name in args.sets:
        samples = user_labels(set_name, args.objects, args.image, args.images)
        before = score(net, set_name, *SIZES[set_name])
        options = AdaptOptions(steps=args.steps, lr=args.lr, max_seconds=args.budget,
                               freeze_norm=args.freeze_norm,
                               backbone_lr_mult=args.backbone_lr_mult, blend=args.blend,
                               scale_jitter=tuple(args.scale_jitter), layers=args.layers,
                               rehearsal=bool(rehearsal) or args.bundled)
        result = adapt(net, samples, options, rehearsal=rehearsal or None)
        after = score(result.net, set_name, *SIZES[set_name])
        known_after = {name: score(result.net, name, *SIZES[name]) for name in args.known}
        entry = {"model": args.model, "label": args.label, "set": set_name,
                 "image": ", ".join(s.name for s in samples), "objects": args.objects,
                 "median_object_side_px": median_side(samples),
                 "steps": result.steps, "lr": args.lr, "freeze_norm": args.freeze_norm,
                 "backbone_lr_mult": args.backbone_lr_mult, "blend": args.blend,
                 "scale_jitter": list(args.scale_jitter), "layers": args.layers,
                 "rehearsal": (f"{args.rehearsal} train images of each of "
                               f"{', '.join(rehearse_on)}" if rehearsal else
                               "shipped (rehearsal_images)" if args.bundled else "none"),
                 "rehearsal_images": result.rehearsal_images,
                 "train_seconds": round(result.seconds, 1),
                 "held_back": {"before": result.before, "after": result.after},
                 "other_images": {"before": without_lists(before),
                                  "after": without_lists(after),
                                  "NoC@85_change": paired_change(before, after)},
                 "known_sets": {"before": {k: without_lists(v) for k, v in known.items()},
                                "after": {k: without_lists(v) for k, v in known_after.items()},
                                "NoC@85_change": {k: paired_change(known[k], known_after[k])
                                                  for k in known}}}
        entries.append(entry)
        print(json.dumps(entry), flush=True)
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    mine = {(e["model"], e["label"], e["set"]) for e in entries}
    kept = [e for e in report.get("runs", [])
            if (e.get("model"), e.get("label"), e["set"]) not in mine]
    report.update({"benchmark": "adapt", "mode": "window", "torch_threads": 1,
                   "machine": machine(), "runs": kept + entries})
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
