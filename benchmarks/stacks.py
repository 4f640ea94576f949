"""The 3D benchmark: a nucleus (or cell) from a few clicks on one slice, then propagation.

Measured as a microscopist works through a stack, with the session the widget drives (its
default mode and settings, the shipped model unless ``--model``): objects one after another
into one labels array; for each, clicks on its largest slice by the NoC clicker until IoU 0.90
(at most ``--clicks``, 3), Finish, then Propagate up and down.

Stacks (``--stacks``):
- ``synthetic:<kind>``: :func:`napari_ritm.evaluation.stacks.synthetic_nuclei` of each kind
  (ellipsoids, irregular, anisotropic), seed 1000 (training used seeds from 0);
- ``gonuclear``: three confocal crops of Arabidopsis ovule nuclei (GoNuclear; the folder
  ``gonuclear_nuclei3d`` that scripts/import_stacks.py writes into runs/data, or into
  ``$NAPARI_RITM_STACKS``);
- ``qcanet``: two fluorescence stacks of mouse embryo nuclei (QCANet; ``qcanet_nuclei3d``, the
  same), 24 nuclei;
- ``ovule``: a confocal crop of Arabidopsis ovule cells (PlantSeg; ``ovule_cells3d``, the same);
- ``isbi_em``: the 20 serial EM sections of ``isbi2012_em`` linked into one stack.
Objects of at least ``--min-slices`` slices (3) and ``--min-area`` pixels on their largest
slice (30).

Per object: the 3D IoU of its label with the true object; slices of the object that propagation
did not reach (stopped early: missed); slices written past its true first or last slice; slices
where it was written with IoU < 0.5; clicks; seconds of propagation. Per stack kind: means, the
share of objects without a slice past an end, the most slices past an end, and every pixel of
earlier objects that the run changed (Overwrite off: must be 0).

    python benchmarks/stacks.py [--model default] [--stacks synthetic:ellipsoids gonuclear ...]
                                [--half select|report|all]
    python benchmarks/stacks.py --half report --markdown --tag NAME [--by-kind]

``--half``: objects with even (select) or odd (report) ids of each stack, to choose a stop rule
on one and report the other (default all). Writes benchmarks/results/stacks_<half>.json.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from common import DATA, STACK_DATA, machine
from common import RESULTS as RESULTS_DIR

from napari_ritm.evaluation.clicker import Clicker
from napari_ritm.evaluation.folders import image_label_pairs, read_array
from napari_ritm.evaluation.stacks import linked_sections, object_extents, synthetic_nuclei
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.zoo import load_model
from napari_ritm.session import Session
from napari_ritm.session.propagation import GUIDES, STOP_RULE, STOP_RULES

STACKS = ("synthetic:ellipsoids", "synthetic:irregular", "synthetic:anisotropic", "gonuclear",
          "qcanet", "ovule", "isbi_em")
KINDS = {"synthetic:ellipsoids": "nuclei", "synthetic:irregular": "nuclei",
         "synthetic:anisotropic": "nuclei", "gonuclear": "nuclei", "qcanet": "nuclei",
         "ovule": "cells", "isbi_em": "EM cells"}


def load_stacks(name: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(stack name, image (Z, H, W), labels (Z, H, W)) of one entry of :data:`STACKS`."""
    if name.startswith("synthetic:"):
        kind = name.split(":", 1)[1]
        return [(f"{kind}-{seed}", s.image, s.labels) for seed in (1000,)
                for s in [synthetic_nuclei(seed, kind)]]
    if name == "isbi_em":
        pairs = image_label_pairs(DATA / "isbi2012_em")
        image = np.stack([read_array(p) for p, _ in pairs])
        return [("isbi_em", image, linked_sections([read_array(q) for _, q in pairs]))]
    folder = {"gonuclear": "gonuclear_nuclei3d", "qcanet": "qcanet_nuclei3d",
              "ovule": "ovule_cells3d"}[name]
    return [(f"{name}-{p.stem}", read_array(p), read_array(q).astype(np.int32))
            for p, q in image_label_pairs(STACK_DATA / folder)]


def objects_of(labels: np.ndarray, min_slices: int, min_area: int, half: str,
               limit: int = 0) -> list[int]:
    """Ids of the objects of ``half`` with at least ``min_slices`` slices and ``min_area``
    pixels on their largest; ``limit`` > 0: at most that many, spread over the ids."""
    out = []
    for index, (first, last) in object_extents(labels).items():
        if half == "select" and index % 2 or half == "report" and not index % 2:
            continue
        areas = (labels == index).sum(axis=(1, 2))
        if last - first + 1 >= min_slices and areas.max() >= min_area:
            out.append(index)
    if limit and len(out) > limit:
        out = [out[i] for i in np.linspace(0, len(out) - 1, limit).round().astype(int)]
    return out


def run_object(session: Session, labels: np.ndarray, truth: np.ndarray, index: int,
               max_clicks: int) -> dict:
    """Clicks on the object's largest slice, Finish, Propagate both ways; its figures."""
    mine = truth == index
    areas = mine.sum(axis=(1, 2))
    z = int(areas.argmax())
    session.set_slice((z,))
    clicker = Clicker(mine[z].astype(np.int32))
    before = labels.copy()
    preview = np.zeros(mine.shape[1:], bool)
    clicks = 0
    for _ in range(max_clicks):
        click = clicker.next_click(preview)
        session.click(click.y, click.x, click.positive)
        session.run_pending()
        clicks += 1
        preview = session.preview if session.preview is not None else preview
        iou = (preview & mine[z]).sum() / max((preview | mine[z]).sum(), 1)
        if iou >= 0.90:
            break
    session.finish()
    session.run_pending()
    label = session.last_committed
    start = time.perf_counter()
    for direction in (1, -1):
        prop = session.stacks.propagate(direction) if label is not None else None
        if prop is None:
            continue
        for step in prop.steps():
            session.stacks.apply_step(step)
        session.stacks.end()
    seconds = time.perf_counter() - start
    first, last = np.flatnonzero(areas)[[0, -1]]
    got = labels == label if label is not None else np.zeros_like(mine)
    written = np.flatnonzero(got.any(axis=(1, 2)))
    inside = (written >= first) & (written <= last)
    reached = set(written.tolist())
    # slices of the object the propagation did not get to: beyond the written run, per side
    missed = (sum(1 for k in range(first, z) if k < (min(reached) if reached else z))
              + sum(1 for k in range(z + 1, last + 1) if k > (max(reached) if reached else z)))
    slice_iou = [((got[k] & mine[k]).sum() / max((got[k] | mine[k]).sum(), 1)) for k in written]
    others = (before != 0) & (labels != before)
    return {
        "id": index, "slices": int(last - first + 1), "clicks": clicks,
        "iou_3d": float((got & mine).sum() / max((got | mine).sum(), 1)),
        "missed": int(missed), "past_end": int((~inside).sum()),
        "wrong_slices": int(sum(i < 0.5 for i in slice_iou)),
        "propagated": int(len(written) - 1 if len(written) else 0),
        "others_changed": int(others.sum()), "seconds": round(seconds, 2),
    }


def summary(rows: list[dict]) -> dict:
    past = np.array([r["past_end"] for r in rows])
    return {
        "objects": len(rows),
        "iou_3d": round(float(np.mean([r["iou_3d"] for r in rows])), 3),
        "clicks": round(float(np.mean([r["clicks"] for r in rows])), 2),
        "missed_per_object": round(float(np.mean([r["missed"] for r in rows])), 2),
        "no_slice_past_end": round(float(np.mean(past == 0)), 3),
        "most_past_end": int(past.max()),
        "slices_past_end": int(past.sum()),
        "wrong_slices": int(sum(r["wrong_slices"] for r in rows)),
        "objects_not_propagated": int(sum(r["propagated"] == 0 for r in rows)),
        "others_changed": int(sum(r["others_changed"] for r in rows)),
        "seconds_per_slice": round(float(sum(r["seconds"] for r in rows)
                                         / max(sum(r["propagated"] + 2 for r in rows), 1)), 3),
    }


#: The docs' table: header, field of :func:`summary`, format.
COLUMNS = (("objects", "objects", "{}"), ("3D IoU", "iou_3d", "{:.2f}"),
           ("clicks", "clicks", "{:.1f}"), ("slices missed", "missed_per_object", "{:.1f}"),
           ("no slice past an end", "no_slice_past_end", "{:.0%}"),
           ("most past an end", "most_past_end", "{}"),
           ("not propagated", "objects_not_propagated", "{}"),
           ("others changed", "others_changed", "{}"), ("s / slice", "seconds_per_slice", "{:.2f}"))


def markdown_table(run: dict, by_kind: bool = False) -> str:
    """A run of the results file as the docs' table: one row per stack (``by_kind``: per stack
    kind)."""
    rows = (run["by_kind"] if by_kind else
            {name: stack["summary"] for name, stack in run["stacks"].items()})
    lines = ["| stacks | " + " | ".join(header for header, _, _ in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for name, f in rows.items():
        lines.append(f"| {name} | " + " | ".join(form.format(f[key]) for _, key, form in COLUMNS)
                     + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--stacks", nargs="+", choices=STACKS, default=list(STACKS))
    parser.add_argument("--half", choices=("select", "report", "all"), default="all")
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--min-slices", type=int, default=3)
    parser.add_argument("--min-area", type=int, default=30)
    parser.add_argument("--limit", type=int, default=12,
                        help="objects per stack, spread over its ids (12; 0: all)")
    parser.add_argument("--tag", default="", help="name of this run in the results file")
    parser.add_argument("--guide", choices=GUIDES, default="click",
                        help="how a slice's mask guides the next (the session's default: click)")
    parser.add_argument("--stop-rule", choices=sorted(STOP_RULES), default=STOP_RULE)
    parser.add_argument("--no-flip", action="store_true", help="without mirror averaging (the "
                        "widget's Extra accuracy off: half the network work)")
    parser.add_argument("--markdown", action="store_true", help="only print the run --tag of "
                        "the results file as a markdown table (for docs/)")
    parser.add_argument("--by-kind", action="store_true",
                        help="with --markdown: one row per stack kind")
    args = parser.parse_args()
    out_path = RESULTS_DIR / f"stacks_{args.half}.json"
    if args.markdown:
        print(markdown_table(json.loads(out_path.read_text())["runs"][args.tag], args.by_kind))
        return 0
    torch.set_num_threads(1)
    net = load_model(args.model)
    results = json.loads(out_path.read_text()) if out_path.is_file() else {"runs": {}}
    tag = args.tag or f"{args.model}, guide {args.guide}, stop {args.stop_rule}"
    run = {"model": args.model, "guide": args.guide, "stop_rule": args.stop_rule,
           "flip": not args.no_flip, "stacks": {}, "by_kind": {}}
    rows_by_kind: dict[str, list] = {}
    for name in args.stacks:
        rows = []
        for stack_name, image, truth in load_stacks(name):
            labels = np.zeros(truth.shape, np.uint16)
            predictor = make_predictor(net, "window", flip=not args.no_flip)
            session = Session(image, labels, predictor=predictor, record_actions=False)
            session.stacks.guide, session.stacks.stop_rule = args.guide, args.stop_rule
            chosen = objects_of(truth, args.min_slices, args.min_area, args.half, args.limit)
            for index in chosen:
                rows.append({"stack": stack_name,
                             **run_object(session, labels, truth, index, args.clicks)})
            print(stack_name, summary(rows[-len(chosen):]) if chosen else "no objects",
                  flush=True)
        run["stacks"][name] = {"summary": summary(rows), "objects": rows}
        rows_by_kind.setdefault(KINDS[name], []).extend(rows)
    run["by_kind"] = {kind: summary(rows) for kind, rows in rows_by_kind.items()}
    results["runs"][tag] = run
    results.update({"what": "3D benchmark: clicks on the largest slice, then propagation up "
                            "and down (benchmarks/stacks.py)", "half": args.half,
                    "machine": machine()})
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(run["by_kind"], indent=1))
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
