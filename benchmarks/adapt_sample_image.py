"""Does adapting to 20 of the user's nuclei teach the model how they draw outlines?

The sample image (stardist_nuclei2d) is annotated tighter than the sets the default model learnt
from (benchmarks/annotation_outlines.py), so the model's masks come out about a pixel too large
there. 20 of its nuclei (of at least 30 px, seeded choice) are the user's labels, the others are
unlabelled; :func:`napari_ritm.training.adapt.adapt` fine-tunes the model on them with the
widget's defaults (or ``--blend``, ``--no-rehearsal``) on one thread; then every other nucleus
of the image is scored before and after (window mode, 20 clicks, no early stop): NoC@85 /
NoC@90 and the IoU after one click; with ``--fit-threshold`` also at the threshold fitted
with the adapted model to the same 20 nuclei (:func:`napari_ritm.evaluation.threshold.
fit_threshold`). Results go to ``benchmarks/results/adapt_sample_image.json``
(one entry per model name and file (its SHA-256), blend, seed and rehearsal or not, replaced
when run again).

    python benchmarks/adapt_sample_image.py --model default --blend 0.3
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import DATA, RESULTS, machine

from napari_ritm.evaluation.folders import image_label_pairs, read_array, to_rgb01
from napari_ritm.evaluation.noc import evaluate_sample, noc
from napari_ritm.evaluation.threshold import fit_threshold
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.zoo import load_model, model_file_hash
from napari_ritm.training.adapt import AdaptOptions, adapt
from napari_ritm.training.data import read_folder

SET = "stardist_nuclei2d"
MIN_AREA = 30
USER_OBJECTS = 20


def score(net, image: np.ndarray, labels: np.ndarray, ids, threshold: float = 0.49) -> dict:
    """NoC@85 / NoC@90 and IoU after one click of ``net`` on the nuclei ``ids``."""
    predictor = make_predictor(net, "window")
    ious = [evaluate_sample(predictor, image, (labels == k).astype(np.int32), stop_iou=None,
                            pred_thresh=threshold, new_image=n == 0).ious
            for n, k in enumerate(ids)]
    return {"objects": len(ious),
            "NoC@85": round(float(np.mean([noc(i, 0.85) for i in ious])), 3),
            "NoC@90": round(float(np.mean([noc(i, 0.90) for i in ious])), 3),
            "IoU@1": round(float(np.mean([i[0] for i in ious])), 4)}


def entry_key(entry: dict) -> tuple:
    """What a rerun replaces: the entry of the same model name and file, blend, seed and
    rehearsal or not."""
    return (entry["model"], entry.get("weights_sha256"), entry["blend"], entry["seed"],
            entry.get("rehearsal") == "none")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--blend", type=float, default=AdaptOptions.blend,
                        help="share of the weight change kept")
    parser.add_argument("--no-rehearsal", dest="rehearsal", action="store_false",
                        help="adapt without the shipped rehearsal images")
    parser.add_argument("--seed", type=int, default=0, help="which nuclei are the user's")
    parser.add_argument("--fit-threshold", action="store_true",
                        help="then fit the threshold with the adapted model on the same 20 "
                             "nuclei (as the widget's button would) and score at it too")
    parser.add_argument("--out", type=Path, default=RESULTS / "adapt_sample_image.json")
    args = parser.parse_args(argv)
    if not (DATA / SET).is_dir():
        print(f"{DATA / SET} not found (set NAPARI_RITM_SHARED)", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    (sample,) = read_folder(DATA / SET)
    ids, areas = np.unique(sample.labels[sample.labels > 0], return_counts=True)
    ids = ids[areas >= MIN_AREA]
    mine = np.random.default_rng(args.seed).choice(ids, size=USER_OBJECTS, replace=False)
    user = np.where(np.isin(sample.labels, mine), sample.labels,
                    np.where(sample.labels > 0, -1, 0)).astype(np.int32)
    net = load_model(args.model)
    options = AdaptOptions(blend=args.blend, rehearsal=args.rehearsal)
    result = adapt(net, [replace(sample, labels=user)], options)
    ((image_path, _),) = image_label_pairs(DATA / SET)
    image = to_rgb01(read_array(image_path))  # as the evaluation reads it
    others = [k for k in ids if k not in mine]
    rehearsal = "shipped (default)" if args.rehearsal else "none"
    entry = {"model": args.model, "weights_sha256": model_file_hash(args.model),
             "blend": args.blend, "rehearsal": rehearsal, "seed": args.seed,
             "user_objects": USER_OBJECTS, "steps": result.steps,
             "train_seconds": round(result.seconds, 1),
             "held_back": {"before": result.before, "after": result.after},
             "other_nuclei": {"before": score(net, image, sample.labels, others),
                              "after": score(result.net, image, sample.labels, others)}}
    if args.fit_threshold:
        fit = fit_threshold(make_predictor(result.net, "window"),
                            [replace(sample, labels=user)], min_area=MIN_AREA)
        entry["fitted_threshold"] = fit.threshold
        entry["other_nuclei"]["after_fitted"] = score(result.net, image, sample.labels, others,
                                                      fit.threshold)
    print(json.dumps(entry), flush=True)
    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    runs = [e for e in report.get("runs", []) if entry_key(e) != entry_key(entry)]
    report.update(benchmark="adapt_sample_image", set=SET, mode="window", torch_threads=1,
                  machine=machine(), runs=runs + [entry])
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
