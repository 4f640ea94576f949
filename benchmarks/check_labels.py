"""Check labels: does the dock's order put the wrong labels first?

**Check labels** (:func:`napari_ritm.session.proofread.check_order`) lets the model segment
each label of a plane from one click at the label's innermost pixel (the label not given to it)
and orders the labels by how little the model's mask agrees with them. Here, on the val images of every shared set
(``--subset``), label planes of three sources are ordered so:

- ``otsu_watershed`` and ``local_watershed``: every label of the classic automatic pipelines
  (:func:`napari_ritm.evaluation.initial_masks.threshold_watershed`, the objects' polarity as a
  user would choose it); not on the photographs of weizmann_horse (one object per image:
  every label a threshold finds there is wrong, and there is no order to measure);
- ``synthetic``: the ground truth, each object given one synthetic error at even odds, of a kind
  drawn from :data:`~napari_ritm.evaluation.initial_masks.ERROR_KINDS` (merged, split, too tight
  or loose, a lobe missing or extra, the neighbouring slice's mask, a rough polygon).

At most ``--per-image`` labels of at least 30 px per image and source, spread evenly over the
ids. A label is *wrong* when its best IoU with a ground-truth object is under 0.8. Per set and
source: labels, the share wrong, the area under the ROC curve of ``1 - agreement`` as a score for
"wrong" (the Mann-Whitney U over wrong x right pairs; 1 = every wrong label before every right
one, 0.5 = chance; none when a class is empty) and the share of the wrong labels found in the
first fifth of the order.

    python benchmarks/check_labels.py [--model default] [--tag NAME] [--subset val_select]
                                      [--sets dsb2018 ...] [--markdown]

Writes ``benchmarks/results/check_labels_<subset>.json`` (a run per model; others kept).
"""
from __future__ import annotations

import json
import time

import numpy as np
import torch
from common import RESULTS as RESULTS_DIR
from common import SPLIT, machine, run_parser, set_dir
from eval_dev import SETS
from scipy.stats import mannwhitneyu

from napari_ritm.commands.evaluate import split_names
from napari_ritm.evaluation.folders import image_label_pairs, read_array, to_rgb01
from napari_ritm.evaluation.initial_masks import (
    ERROR_KINDS,
    PIPELINES,
    bright_objects,
    synthetic_error,
    threshold_watershed,
)
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.zoo import load_model
from napari_ritm.session.proofread import check_order

MIN_AREA = 30
WRONG_BELOW = 0.8
SOURCES = (*PIPELINES, "synthetic")


def best_iou(plane: np.ndarray, gt: np.ndarray) -> dict[int, float]:
    """For each label of ``plane``, its best IoU with an object of ``gt`` (both (H, W) ids)."""
    ids, areas = np.unique(plane[plane > 0], return_counts=True)
    gt_areas = np.bincount(gt.ravel())
    both = (plane > 0) & (gt > 0)
    pairs, inter = np.unique(np.stack([plane[both], gt[both]]), axis=1, return_counts=True)
    area = dict(zip(ids.tolist(), areas.tolist()))
    out = {int(i): 0.0 for i in ids}
    for (a, g), n in zip(pairs.T.tolist(), inter.tolist()):
        out[a] = max(out[a], n / (area[a] + gt_areas[g] - n))
    return out


def evenly(ids: list[int], k: int) -> list[int]:
    if len(ids) <= k:
        return ids
    return [ids[int(i)] for i in np.linspace(0, len(ids) - 1, k).round()]


def keep_only(plane: np.ndarray, ids: list[int]) -> np.ndarray:
    return np.where(np.isin(plane, ids), plane, 0)


def large_ids(plane: np.ndarray) -> list[int]:
    ids, areas = np.unique(plane[plane > 0], return_counts=True)
    return [int(i) for i, a in zip(ids, areas) if a >= MIN_AREA]


def synthetic_plane(gt: np.ndarray, per_image: int, rng: np.random.Generator) -> np.ndarray:
    """``gt``'s objects (up to ``per_image``, spread evenly), each with an error at even odds:
    the correct ones painted first, the wrong ones over them."""
    chosen = evenly(large_ids(gt), per_image)
    wrong = rng.random(len(chosen)) < 0.5
    plane = keep_only(gt, [label for label, w in zip(chosen, wrong) if not w])
    for label in (label for label, w in zip(chosen, wrong) if w):
        kind = ERROR_KINDS[int(rng.integers(len(ERROR_KINDS)))]
        mask = synthetic_error(kind, gt, label, rng)
        plane[mask if mask is not None else gt == label] = label
    return plane


#: sets without classic-pipeline labels (see the module docstring)
NO_PIPELINES = {"weizmann_horse"}


def planes(image: np.ndarray, gt: np.ndarray, per_image: int, rng: np.random.Generator,
           pipelines: bool = True) -> dict[str, np.ndarray]:
    gray = image.mean(axis=2)
    bright = bright_objects(gray, gt)
    out = {}
    for name, local in PIPELINES.items() if pipelines else ():
        auto = threshold_watershed(image, bright=bright, local=local)
        out[name] = keep_only(auto, evenly(large_ids(auto), per_image))
    out["synthetic"] = synthetic_plane(gt, per_image, rng)
    return out


def summary(rows: list[tuple[float, bool]]) -> dict:
    """rows: (agreement, wrong) per label."""
    if not rows:
        return {"labels": 0}
    scores = np.array([1.0 - a for a, _ in rows])
    wrong = np.array([w for _, w in rows])
    out = {"labels": len(rows), "wrong_share": float(wrong.mean()), "auc": None,
           "wrong_in_first_fifth": None}
    if wrong.any() and not wrong.all():
        u = mannwhitneyu(scores[wrong], scores[~wrong]).statistic
        out["auc"] = float(u / (wrong.sum() * (~wrong).sum()))
        order = np.argsort(-scores, kind="stable")
        first = order[: max(1, round(len(rows) / 5))]
        out["wrong_in_first_fifth"] = float(wrong[first].sum() / wrong.sum())
    return out


def markdown(results: dict) -> str:
    lines = []
    for tag, run in results["runs"].items():
        sets = list(run["sets"])
        lines += [f"{tag}: AUC (labels, wrong share) per set and source", "",
                  "| source | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
        for source in SOURCES:
            cells = []
            for s in sets:
                r = run["sets"][s].get(source, {"labels": 0})
                auc = "–" if r.get("auc") is None else f"{r['auc']:.2f}"
                share = f", {r['wrong_share']:.0%} wrong" if r["labels"] else ""
                cells.append(f"{auc} ({r['labels']}{share})")
            lines.append(f"| {source} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = run_parser(__doc__.split("\n\n")[0], SETS)
    parser.add_argument("--per-image", type=int, default=20,
                        help="labels per image and source, at most (20)")
    parser.add_argument("--markdown", action="store_true",
                        help="only print the results file as markdown tables")
    args = parser.parse_args()
    out_path = RESULTS_DIR / f"check_labels_{args.subset}.json"
    results = json.loads(out_path.read_text()) if out_path.is_file() else {"runs": {}}
    if args.markdown:
        print(markdown(results))
        return 0
    torch.set_num_threads(1)
    predictor = make_predictor(load_model(args.model), "window")
    run: dict = {"model": args.model, "per_image": args.per_image, "sets": {}}
    for set_name in args.sets:
        folder = set_dir(set_name)
        names = split_names(SPLIT, args.subset, [folder])[0]
        pairs = [(i, lab) for i, lab in image_label_pairs(folder) if i.stem in names]
        if not pairs:
            continue  # stardist_nuclei2d has no val_select image
        rng = np.random.default_rng(0)
        rows: dict[str, list[tuple[float, bool]]] = {s: [] for s in SOURCES}
        start = time.perf_counter()
        for image_path, label_path in pairs:
            image = to_rgb01(read_array(image_path))
            gt = read_array(label_path).astype(np.int32)
            chosen = planes(image, gt, args.per_image, rng, set_name not in NO_PIPELINES)
            for source, plane in chosen.items():
                truth = best_iou(plane, gt)
                for check in check_order(predictor, plane, image, min_area=MIN_AREA):
                    rows[source].append((check.agreement, truth[check.label] < WRONG_BELOW))
        run["sets"][set_name] = {s: summary(r) for s, r in rows.items()}
        run["sets"][set_name]["seconds"] = round(time.perf_counter() - start, 1)
        print(set_name, {s: (v["labels"], v.get("auc") and round(v["auc"], 3))
                         for s, v in run["sets"][set_name].items() if s != "seconds"}, flush=True)
    results["runs"][args.tag or args.model] = run
    results.update({"what": "Check labels' order against the labels' truth "
                            "(benchmarks/check_labels.py)",
                    "subset": args.subset, "wrong_below_iou": WRONG_BELOW, "machine": machine()})
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown({"runs": {args.tag or args.model: run}}))
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
