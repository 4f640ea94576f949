"""Refining an automatic segmentation against starting over, per set and per kind of error.

On the val images of every shared set (``--subset``: the half to choose on, ``val_select``, or
the half to report, ``val_report``), each object gets initial masks of two sources:

- the classic automatic pipelines run here (:func:`napari_ritm.evaluation.initial_masks.
  threshold_watershed`: Otsu, and a local threshold, then a distance-transform watershed; the
  polarity of the objects as a user would choose it), matched to the object (the automatic label
  that overlaps it most);
- synthetic errors of each kind of :data:`~napari_ritm.evaluation.initial_masks.ERROR_KINDS`
  (merged with a neighbour, split, boundary 1-4 px too tight or loose, a lobe missing or
  extra, the neighbouring slice's mask, a rough polygon), each reported on its own.

Only initial masks with IoU < 0.90 (and not empty: there is a label to refine) are kept. The
protocol is RITM's evaluation from an initial mask (:func:`napari_ritm.evaluation.noc.
evaluate_sample` with ``init_mask``): the first click goes to the initial mask's largest error,
the mask is the predictor's previous mask, 20 clicks, stop at IoU 0.90; the same objects from
scratch beside. Per set and kind: objects, IoU before any click, NoC@85 / NoC@90 refining and
from scratch (and their ratio), the IoU after the first click both ways, and the share of
objects that a correction click makes worse (the IoU falls more than 0.05 below the start
within 3 clicks). For merged labels also the clicks until they are two correct objects as
**Split off the rest** leaves them (:func:`split_clicks`; each IoU >= 0.85 with its true
object): median (never = 21) and the share never split in 20 clicks.

    python benchmarks/refine.py [--model default] [--subset val_select] [--sets dsb2018 ...]
        [--kinds merged ...]
    python benchmarks/refine.py --markdown [--tag NAME] [--subset val_select]
    python benchmarks/refine.py --markdown --tag NAME --versus BASE [--subset val_select]
    python benchmarks/refine.py --markdown --overview RUN [RUN ...] [--subset val_select]

``--overview`` puts runs of the file side by side, per set with the kinds of start mask
pooled: mean NoC@90 refining / from scratch, the median over the kinds of their ratio, and the
share a correction makes worse. ``--versus`` compares two runs of the file object by object,
per set (the kinds pooled, the objects both runs refined): mean NoC@90 refining, their paired
difference (mean ± standard error), the IoU after the first correction click, the share a
correction makes worse, and the median over the kinds of start mask of NoC@90 refining / from
scratch.

Writes benchmarks/results/refine_<subset>.json (a run per model; runs of other models kept).
"""
from __future__ import annotations

import json

import numpy as np
import torch
from common import RESULTS as RESULTS_DIR
from common import machine, paired_noc, run_parser, set_dir, val_dataset
from eval_dev import SETS

from napari_ritm.evaluation.clicker import Clicker
from napari_ritm.evaluation.folders import read_array
from napari_ritm.evaluation.initial_masks import (
    ERROR_KINDS,
    PIPELINES,
    bright_objects,
    matched_masks,
    synthetic_error,
    threshold_watershed,
)
from napari_ritm.evaluation.noc import evaluate_sample, noc
from napari_ritm.inference.clicks import DEFAULT_THRESHOLD as THRESHOLD
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.zoo import load_model
from napari_ritm.session.proofread import split_off

MAX_CLICKS = 20


def initial_masks(image: np.ndarray, labels: np.ndarray, ids: list[int],
                  rng: np.random.Generator) -> dict[str, dict[int, np.ndarray]]:
    """Kind -> object id -> initial mask, for the objects ``ids`` of one image."""
    gray = image.mean(axis=2) if image.ndim == 3 else image
    bright = bright_objects(gray, labels)
    out: dict[str, dict[int, np.ndarray]] = {}
    for name, local in PIPELINES.items():
        matched = matched_masks(threshold_watershed(image, bright=bright, local=local), labels)
        out[name] = {i: matched[i] for i in ids}
    for kind in ERROR_KINDS:
        out[kind] = {}
        for i in ids:
            mask = synthetic_error(kind, labels, i, rng)
            if mask is not None:
                out[kind][i] = mask
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


SPLIT_IOU = 0.85


def split_clicks(predictor, init: np.ndarray, labels: np.ndarray, target: int) -> int | None:
    """Clicks until a merged label ``init`` (the object ``target`` of ``labels`` joined with a
    neighbour) is two correct objects as **Split off the rest** leaves them: the new label
    (:func:`~napari_ritm.session.proofread.split_off`: the largest part of ``init`` outside the
    refined mask) and the label, now the refined mask with the smaller parts, each IoU >= 0.85
    with its object. The NoC clicker corrects the object; None when 20 clicks do not do it."""
    others = labels[init & (labels != target) & (labels > 0)]
    if others.size == 0:
        return None
    neighbour = labels == np.bincount(others).argmax()
    gt = labels == target
    clicker, pred, prev = Clicker(gt.astype(np.int32)), init, init.astype(np.float32)
    predictor.reset()
    for n in range(1, MAX_CLICKS + 1):
        clicker.next_click(pred)
        pred = predictor.predict(list(clicker.clicks), prev) > THRESHOLD
        other = split_off(init, pred)
        if (iou(pred | (init & ~other), gt) >= SPLIT_IOU
                and iou(other, neighbour) >= SPLIT_IOU):
            return n
    return None


def made_worse(row: dict) -> bool:
    """A correction made the mask worse: its IoU fell more than 0.05 below the start within
    3 clicks."""
    return min(row["refine"][:3]) < row["start"] - 0.05


def summary(rows: list[dict]) -> dict:
    if not rows:
        return {"objects": 0}
    out = {"objects": len(rows), "start_iou": float(np.mean([r["start"] for r in rows]))}
    for t in (0.85, 0.90):
        key = f"NoC@{round(t * 100)}"
        refine = float(np.mean([noc(r["refine"], t, MAX_CLICKS) for r in rows]))
        scratch = float(np.mean([noc(r["scratch"], t, MAX_CLICKS) for r in rows]))
        out[key] = {"refine": refine, "scratch": scratch,
                    "ratio": refine / scratch if scratch else float("nan")}
    out["iou_after_1"] = {"refine": float(np.mean([r["refine"][0] for r in rows])),
                          "scratch": float(np.mean([r["scratch"][0] for r in rows]))}
    out["worse_share"] = float(np.mean([made_worse(r) for r in rows]))
    if "split_clicks" in rows[0]:  # never split in 20 clicks counts as 21
        clicks = [MAX_CLICKS + 1 if r["split_clicks"] is None else r["split_clicks"]
                  for r in rows]
        out["split_clicks_median"] = float(np.median(clicks))
        out["never_split"] = float(np.mean([r["split_clicks"] is None for r in rows]))
    return out


def markdown(results: dict, tag: str) -> str:
    """One run of the results file as a table: per kind (rows) and set (columns), NoC@90
    refining / from scratch (objects), and the share a correction click makes worse."""
    run = results["runs"][tag]
    sets = list(run["sets"])
    kinds = [*PIPELINES, *ERROR_KINDS]
    lines = [f"| start mask | {' | '.join(sets)} |", "|---|" + "---|" * len(sets)]
    for kind in kinds:
        cells = []
        for s in sets:
            r = run["sets"][s].get(kind, {"objects": 0})
            cells.append("–" if not r["objects"] else
                         f"{r['NoC@90']['refine']:.2f} / {r['NoC@90']['scratch']:.2f} "
                         f"({r['objects']}), {r['worse_share']:.0%} worse")
        lines.append(f"| {kind} | {' | '.join(cells)} |")
    return "\n".join(lines)


def overview(results: dict, tags: list[str]) -> str:
    """Runs ``tags`` (rows) per set (columns), the kinds of start mask pooled: mean NoC@90
    refining / from scratch, the median over the kinds of their ratio, the share made worse."""
    runs = [results["runs"][t] for t in tags]
    sets = list(dict.fromkeys(s for run in runs for s in run["sets"]))
    lines = [f"| run | {' | '.join(sets)} |", "|---|" + "---|" * len(sets)]
    for tag, run in zip(tags, runs):
        cells = []
        for set_name in sets:
            kinds = [r for r in run["sets"].get(set_name, {}).values() if r["objects"]]
            if not kinds:
                cells.append("–")
                continue
            n = sum(r["objects"] for r in kinds)
            mean = {way: sum(r["NoC@90"][way] * r["objects"] for r in kinds) / n
                    for way in ("refine", "scratch")}
            worse = sum(r["worse_share"] * r["objects"] for r in kinds) / n
            ratio = np.median([r["NoC@90"]["ratio"] for r in kinds])
            cells.append(f"{mean['refine']:.2f} / {mean['scratch']:.2f}, ×{ratio:.2f}, "
                         f"{worse:.0%} worse")
        lines.append(f"| {tag} | {' | '.join(cells)} |")
    return "\n".join(lines)


def versus(results: dict, tag: str, base: str) -> str:
    """Run ``tag`` against run ``base`` per set, object by object (see the module docstring)."""
    lines = [f"{tag} against {base}", "",
             "| set | objects | mean NoC@90 refining | paired | IoU after 1st correction "
             "| made worse | median refining / scratch |", "|---|---|---|---|---|---|---|"]
    runs = results["runs"]
    for set_name, kinds in runs[tag]["sets"].items():
        if set_name not in runs[base]["sets"]:
            continue
        pairs = []
        for kind, r in kinds.items():
            old = {(o["image"], o["label"]): o
                   for o in runs[base]["sets"][set_name].get(kind, {}).get("objects_detail", [])}
            pairs += [(o, old[key]) for o in r.get("objects_detail", [])
                      if (key := (o["image"], o["label"])) in old]
        if len(pairs) < 2:
            continue
        new, ref = [o for o, _ in pairs], [b for _, b in pairs]
        d = paired_noc([o["refine"] for o in new], [b["refine"] for b in ref])["NoC@90"]
        mean = [np.mean([noc(o["refine"], 0.9, MAX_CLICKS) for o in objs]) for objs in (ref, new)]
        first = [np.mean([o["refine"][0] for o in objs]) for objs in (ref, new)]
        worse = [np.mean([made_worse(o) for o in objs]) for objs in (ref, new)]
        ratio = [np.median([r["NoC@90"]["ratio"] for r in run["sets"][set_name].values()
                            if r["objects"]]) for run in (runs[base], runs[tag])]
        lines.append(f"| {set_name} | {len(pairs)} | {mean[0]:.2f} → {mean[1]:.2f} | "
                     f"{d['mean']:+.2f} ± {d['se']:.2f} | {first[0]:.3f} → {first[1]:.3f} | "
                     f"{worse[0]:.1%} → {worse[1]:.1%} | {ratio[0]:.2f} → {ratio[1]:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = run_parser(__doc__.split("\n\n")[0], SETS)
    parser.add_argument("--markdown", action="store_true",
                        help="only print the run --tag (or --model) of the results file as a "
                             "markdown table")
    parser.add_argument("--versus", metavar="BASE",
                        help="with --markdown: compare the run with the run BASE instead")
    parser.add_argument("--kinds", nargs="+", choices=[*PIPELINES, *ERROR_KINDS],
                        help="only these kinds of start mask (default: all)")
    parser.add_argument("--overview", nargs="+", metavar="RUN",
                        help="with --markdown: these runs of the file side by side instead, "
                             "per set (the kinds pooled)")
    args = parser.parse_args()
    out_path = RESULTS_DIR / f"refine_{args.subset}.json"
    if args.markdown:
        results = json.loads(out_path.read_text())
        tag = args.tag or args.model
        print(overview(results, args.overview) if args.overview else
              versus(results, tag, args.versus) if args.versus else markdown(results, tag))
        return 0
    torch.set_num_threads(1)
    predictor = make_predictor(load_model(args.model), "window")
    results = json.loads(out_path.read_text()) if out_path.is_file() else {"runs": {}}
    run: dict = {"model": args.model, "sets": {}}
    for set_name in args.sets:
        if set_name == "stardist_nuclei2d" and args.subset == "val_select":
            continue  # report-only
        per_image, limit = SETS[set_name]
        data = val_dataset(set_name, args.subset, min_area=30, max_objects_per_image=per_image,
                           limit=limit)
        rng = np.random.default_rng(0)
        rows: dict[str, list[dict]] = {}
        by_image: dict = {}
        for sample in data:
            by_image.setdefault(sample.image_name, []).append(sample)
        for samples in by_image.values():
            image = samples[0].image
            stem = samples[0].image_name.rsplit(".", 1)[0]
            labels = read_array(set_dir(set_name) / "labels" / f"{stem}.tif").astype(np.int32)
            ids = [s.label for s in samples]
            masks = initial_masks(image, labels, ids, rng)
            predictor.set_image(image)
            for s in samples:
                scratch = None  # from scratch once per object, if any kind keeps it
                for kind, chosen in masks.items():
                    if args.kinds and kind not in args.kinds:
                        continue
                    init = chosen.get(s.label)
                    if init is None or not init.any():
                        continue
                    start = iou(init, s.gt == 1)
                    if start >= 0.90:
                        continue
                    if scratch is None:
                        scratch = evaluate_sample(predictor, image, s.gt, max_clicks=MAX_CLICKS,
                                                  new_image=False).ious
                    refine = evaluate_sample(predictor, image, s.gt, max_clicks=MAX_CLICKS,
                                             new_image=False, init_mask=init).ious
                    row = {"image": s.image_name, "label": s.label, "start": start,
                           "refine": refine, "scratch": scratch}
                    if kind == "merged":
                        row["split_clicks"] = split_clicks(predictor, init, labels, s.label)
                    rows.setdefault(kind, []).append(row)
        run["sets"][set_name] = {kind: {**summary(r), "objects_detail": r}
                                 for kind, r in rows.items()}
        brief = {k: (v["objects"], round(v["NoC@90"]["refine"], 2),
                     round(v["NoC@90"]["scratch"], 2), round(v["worse_share"], 3))
                 for k, v in run["sets"][set_name].items()}
        print(set_name, brief, flush=True)
    results["runs"][args.tag or args.model] = run
    results.update({"what": "refine vs from scratch (benchmarks/refine.py)",
                    "subset": args.subset, "machine": machine()})
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
