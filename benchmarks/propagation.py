"""Where should propagation through a stack stop? Every candidate rule, measured offline.

On the 3D benchmark's stacks (benchmarks/stacks.py: synthetic nuclei, gonuclear and qcanet
nuclei, ovule cells, isbi_em; ``--half select`` by default, the objects rules are chosen on),
each object is propagated from its true mask on its largest slice, both ways, by the session's own
:class:`~napari_ritm.session.propagation.Propagation` with ``--guide`` and a rule that never
fires, up to ``--past`` slices beyond the object's true end (or until the mask is empty). Every
step keeps what the network returned (:class:`~napari_ritm.session.propagation.StepFigures`)
and the overlap of the written mask with the true one. Each rule of ``STOP_RULES`` is then
applied to those records (a rule stops at the first step where it fires; that slice is not
written), giving per stack kind: the 3D IoU of the object so propagated, slices missed before
an end, the share of objects with no slice written past an end, and the most slices written
past the ends of one object; and the 3D IoU had it stopped exactly at the true ends (what the
masks allow, whatever the rule).

    python benchmarks/propagation.py [--model default] [--guide click|mask] [--half select]
                                     [--past 6] [--tag NAME] [--records FILE.json]
    python benchmarks/propagation.py --from-records FILE.json --model M --guide G --tag NAME
    python benchmarks/propagation.py --markdown --tag NAME [--rules RULE ...]

Writes benchmarks/results/propagation_<half>.json (one entry per tag).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from common import RESULTS, machine
from stacks import KINDS, STACKS, load_stacks, objects_of

from napari_ritm.inference.modes import make_predictor
from napari_ritm.inference.planes import ImageSource
from napari_ritm.model.zoo import load_model
from napari_ritm.session.propagation import GUIDES, STOP_RULE, STOP_RULES, Propagation, StepFigures


def trajectory(predictor, source: ImageSource, truth: np.ndarray, index: int, guide: str,
               past: int) -> dict:
    """Propagate object ``index`` from its true mask on its largest slice, both ways, with no
    stop rule; per step its figures and the overlap with the true object."""
    mine = truth == index
    areas = mine.sum(axis=(1, 2))
    start = int(areas.argmax())
    first, last = (int(v) for v in np.flatnonzero(areas)[[0, -1]])
    out = {"id": index, "first": first, "last": last, "start": start,
           "voxels": int(areas.sum()), "start_area": int(areas[start]), "sides": {}}
    for direction, end in ((1, last), (-1, first)):
        run = Propagation(predictor, source, (start,), mine[start], direction, guide=guide)
        run.stop_rule = lambda figures: False
        steps = []
        for step in run.steps():
            z = step.key[-1]
            gt = mine[z]
            steps.append({"z": z, "inside": bool((z - end) * direction <= 0),
                          **step.figures.__dict__,
                          "inter": int((step.mask & gt).sum()), "gt_area": int(gt.sum())})
            if (z - end) * direction >= past or not step.mask.any():
                run.cancel()
        out["sides"][str(direction)] = steps
    return out


def _fires(rule, step: dict) -> bool:
    return rule(StepFigures(**{k: step[k] for k in StepFigures.__dataclass_fields__}))


def apply_rule(rule, trajectories: list[dict]) -> dict:
    """The figures of ``rule`` over ``trajectories`` (see the module docstring)."""
    over, missed, ious = [], [], []
    for t in trajectories:
        inter, union, past, miss = t["start_area"], t["voxels"], 0, 0
        for side, steps in t["sides"].items():
            written = next((i for i, s in enumerate(steps) if _fires(rule, s)), len(steps))
            kept = steps[:written]
            inter += sum(s["inter"] for s in kept)
            union += sum(s["area"] - s["inter"] for s in kept)
            past += sum(not s["inside"] for s in kept)
            reached = max((abs(s["z"] - t["start"]) for s in kept if s["inside"]), default=0)
            end = t["last"] if side == "1" else t["first"]
            miss += abs(end - t["start"]) - reached
        over.append(past)
        missed.append(miss)
        ious.append(inter / union)
    over_a = np.asarray(over)
    return {"objects": len(trajectories), "iou_3d": round(float(np.mean(ious)), 3),
            "missed_per_object": round(float(np.mean(missed)), 2),
            "no_slice_past_end": round(float((over_a == 0).mean()), 3),
            "most_past_end": int(over_a.max()), "slices_past_end": int(over_a.sum())}


def oracle_stop(trajectories: list[dict]) -> dict:
    """The 3D IoU if propagation stopped exactly at each true end (every recorded slice inside
    the object written, none past): what the masks allow, whatever the rule. Also, per quarter
    of the way from the start slice to an end (the last quarter holds the caps), the mean IoU
    of the written slices and the median of their area over the true area."""
    ious, quarters = [], [[] for _ in range(4)]
    for t in trajectories:
        inside = [s for steps in t["sides"].values() for s in steps if s["inside"]]
        inter = t["start_area"] + sum(s["inter"] for s in inside)
        union = t["voxels"] + sum(s["area"] - s["inter"] for s in inside)
        ious.append(inter / union)
        for side, steps in t["sides"].items():
            reach = abs((t["last"] if side == "1" else t["first"]) - t["start"])
            for s in (s for s in steps if s["inside"]):
                quarter = min(int(4 * abs(s["z"] - t["start"]) / reach), 3)
                union = max(s["area"] + s["gt_area"] - s["inter"], 1)
                quarters[quarter].append((s["inter"] / union, s["area"] / max(s["gt_area"], 1)))
    return {"objects": len(trajectories), "iou_3d": round(float(np.mean(ious)), 3),
            "by_quarter": [{"quarter": i + 1, "slices": len(q),
                            "slice_iou": round(float(np.mean([v[0] for v in q])), 3),
                            "area_over_true": round(float(np.median([v[1] for v in q])), 2)}
                           for i, q in enumerate(quarters) if q]}


def markdown_table(run: dict, rules: list[str] | None = None) -> str:
    """A run of the results file as a table: one row per rule (``rules``: these only), per
    stack kind "3D IoU, slices missed, share of objects with no slice past an end, most
    slices past an end of one object"."""
    kinds = list(next(iter(run["rules"].values())))
    objects = {kind: next(iter(run["rules"].values()))[kind]["objects"] for kind in kinds}
    lines = ["| rule | " + " | ".join(f"{kind} ({objects[kind]})" for kind in kinds) + " |",
             "|---|" + "---|" * len(kinds)]
    for name, figures in run["rules"].items():
        if rules and name not in rules:
            continue
        cells = [f"{f['iou_3d']:.2f}, {f['missed_per_object']:.1f} missed, "
                 f"{f['no_slice_past_end']:.0%} none past, most {f['most_past_end']}"
                 for f in (figures[kind] for kind in kinds)]
        shown = f"**{name} (used)**" if name == run["session_rule"] else name
        lines.append(f"| {shown} | " + " | ".join(cells) + " |")
    if "oracle_stop" in run:
        cells = [f"{run['oracle_stop'][kind]['iou_3d']:.2f}" for kind in kinds]
        lines.append("| *stopped at the true ends* | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def propagate_all(args: argparse.Namespace) -> dict[str, list]:
    """Every chosen object's :func:`trajectory`, per stack kind."""
    torch.set_num_threads(1)
    predictor = make_predictor(load_model(args.model), "window")
    by_kind: dict[str, list] = {}
    for name in args.stacks:
        for stack_name, image, truth in load_stacks(name):
            source = ImageSource(image, rgb=image.ndim == truth.ndim + 1)
            chosen = objects_of(truth, 3, 30, args.half, args.limit)
            rows = [trajectory(predictor, source, truth, k, args.guide, args.past)
                    for k in chosen]
            by_kind.setdefault(KINDS[name], []).extend(rows)
            print(f"{stack_name}: {len(rows)} objects", flush=True)
    return by_kind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--guide", choices=GUIDES, default="click")
    parser.add_argument("--half", choices=("select", "report", "all"), default="select")
    parser.add_argument("--stacks", nargs="+", choices=STACKS, default=list(STACKS))
    parser.add_argument("--past", type=int, default=6)
    parser.add_argument("--limit", type=int, default=12, help="objects per stack (0: all)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--records", help="also write every step's figures to this JSON file "
                        "(to try new rules without the network)")
    parser.add_argument("--from-records", help="apply the rules to the records of an earlier "
                        "run (written with --records, with the same --model, --guide, --half "
                        "and --past) instead of running the network")
    parser.add_argument("--markdown", action="store_true", help="only print the run --tag of "
                        "the results file as a markdown table (for docs/)")
    parser.add_argument("--rules", nargs="+", help="with --markdown: these rules only")
    args = parser.parse_args(argv)
    out_path = RESULTS / f"propagation_{args.half}.json"
    if args.markdown:
        print(markdown_table(json.loads(out_path.read_text())["runs"][args.tag], args.rules))
        return 0
    if args.from_records:
        with open(args.from_records) as f:
            by_kind = json.load(f)
    else:
        by_kind = propagate_all(args)
        if args.records:
            with open(args.records, "w") as f:
                json.dump(by_kind, f)
    rules = {name: {kind: apply_rule(rule, rows) for kind, rows in by_kind.items()}
             for name, rule in STOP_RULES.items()}
    oracle = {kind: oracle_stop(rows) for kind, rows in by_kind.items()}
    for name, figures in {**rules, "oracle stop": oracle}.items():
        print(name, json.dumps(figures), flush=True)
    results = json.loads(out_path.read_text()) if out_path.is_file() else {"runs": {}}
    tag = args.tag or f"{args.model}, guide {args.guide}"
    results["runs"][tag] = {"model": args.model, "guide": args.guide, "past": args.past,
                            "session_rule": STOP_RULE, "rules": rules,
                            "oracle_stop": oracle}
    results.update({"what": "stop rules applied offline to propagation without a rule "
                            "(benchmarks/propagation.py)", "half": args.half,
                    "machine": machine()})
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
