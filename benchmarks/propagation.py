"""Where should propagation through a stack stop? Measured on real and synthetic stacks.

Stacks:
- ``isbi2012_em``: the 20 consecutive serial-section EM slices (all of them, train and val
  images of the split: the question is the stop rule, not the network). Cells are linked from
  slice to slice by their best overlap (IoU >= 0.3, one to one); a track ends where the link
  breaks.
- ``synthetic``: 4 stacks of 24 planes, 256 x 256, with 14 bright textured cells each whose
  cross-section grows and shrinks like a sphere's between a first and a last plane (known), drift
  slowly, and may touch their neighbours but never share a voxel with them; noisy, uneven
  background.

For each object (track of at least 3 planes), propagation starts from its ground-truth mask on
its middle plane and runs both ways with the window predictor and the default model, without a
stop rule, up to 4 planes past the object's true end (or the stack's end), as the product does
it: per plane a guided pass (previous mask as input) and a fresh one (the click alone). Every
step records what the network returned (:class:`~napari_ritm.session.propagation.StepFigures`). Each
candidate rule of ``STOP_RULES`` is then applied offline (a rule stops at the first step where
it fires; that plane is not written), giving per rule: the share of objects with no plane
written past their end, the most planes past an end, planes missed before the end, and the
mean IoU with the ground truth of the written planes that hold the object.

    python benchmarks/propagation.py [--model default] [--past 4] [--steps FILE.json]

Writes benchmarks/results/propagation.json (``--steps``: also every step's figures, ~1.5 MB).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from common import DATA
from common import RESULTS as RESULTS_DIR
from scipy import ndimage

from napari_ritm.evaluation.folders import image_label_pairs, read_array, to_rgb01
from napari_ritm.inference.clicks import Click, innermost_pixel
from napari_ritm.inference.modes import make_predictor
from napari_ritm.model.zoo import load_model
from napari_ritm.session.propagation import STOP_RULE, STOP_RULES, StepFigures

RESULTS = RESULTS_DIR / "propagation.json"


def synthetic_stack(seed: int, depth: int = 24, size: int = 256, cells: int = 14):
    """(image (Z, H, W) uint8, labels (Z, H, W) int32): cells with known first/last planes.

    Cells never share a voxel (a cell drawn where another already is would "end" where the
    other takes over, with nothing in the image to say so); they may touch, in a plane and
    from one plane to the next. A placement that overlaps is drawn again."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    background = 40 + 25 * np.sin(xx / 37 + rng.random() * 6) * np.cos(yy / 53)
    image = np.zeros((depth, size, size), np.float32)
    labels = np.zeros((depth, size, size), np.int32)
    k = 0
    while k < cells:
        z0 = int(rng.integers(0, depth - 6))
        z1 = int(min(depth - 1, z0 + rng.integers(5, 14)))
        zc, hz = (z0 + z1) / 2, (z1 - z0) / 2 + 0.5
        cy, cx = rng.uniform(25, size - 25, 2)
        vy, vx = rng.normal(0, 0.8, 2)
        radius, aspect = rng.uniform(10, 22), rng.uniform(0.7, 1.3)
        bright = rng.uniform(110, 190)
        texture = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 2) * 60
        planes = {}
        for z in range(z0, z1 + 1):
            r = radius * np.sqrt(max(0.0, 1 - ((z - zc) / hz) ** 2))
            if r >= 2.5:
                y, x = cy + vy * (z - zc), cx + vx * (z - zc)
                planes[z] = ((yy - y) / (r * aspect)) ** 2 + ((xx - x) / r) ** 2 <= 1
        if len(planes) < 3 or any(labels[z][inside].any() for z, inside in planes.items()):
            continue
        k += 1
        for z, inside in planes.items():
            labels[z][inside] = k
            image[z][inside] = bright + texture[inside]
    noise = rng.normal(0, 12, image.shape)
    image = np.clip(np.where(labels > 0, image, background[None]) + noise, 0, 255)
    return image.astype(np.uint8), labels


def em_stack():
    """The isbi2012_em slices as (image (Z, H, W, 3) float32, labels (Z, H, W) int32 tracks)."""
    pairs = image_label_pairs(DATA / "isbi2012_em")
    images = np.stack([to_rgb01(read_array(i)) for i, _ in pairs])
    per_slice = [read_array(lab).astype(np.int32) for _, lab in pairs]
    return images, link_tracks(per_slice)


def link_tracks(per_slice: list[np.ndarray], min_iou: float = 0.3) -> np.ndarray:
    """Give each chain of best-overlapping components (IoU >= ``min_iou``, one to one) one id."""
    tracks = np.zeros((len(per_slice), *per_slice[0].shape), np.int32)
    next_id, previous = 1, {}
    for z, labels in enumerate(per_slice):
        current, used = {}, set()
        for k in np.unique(labels[labels > 0]):
            mask = labels == k
            best, best_iou = None, min_iou
            if z > 0:
                ids, counts = np.unique(per_slice[z - 1][mask], return_counts=True)
                for j, inter in zip(ids, counts):
                    if j == 0 or j in used:
                        continue
                    union = mask.sum() + (per_slice[z - 1] == j).sum() - inter
                    if inter / union >= best_iou:
                        best, best_iou = j, inter / union
            if best is not None:
                used.add(best)
                track = previous[best]
            else:
                track, next_id = next_id, next_id + 1
            tracks[z][mask] = track
            current[k] = track
        previous = current
    return tracks


def trajectory(predictor, images, labels, track: int, past: int) -> dict:
    """Propagate ``track`` from its middle plane both ways without a stop rule, carrying the
    guided mask forward; per step the network's figures (both passes) and the IoUs of the
    guided and the fresh mask with the ground truth."""
    planes = [z for z in range(len(labels)) if (labels[z] == track).any()]
    start = planes[len(planes) // 2]
    first, last = planes[0], planes[-1]
    out = {"first": first, "last": last, "start": start, "steps": {}}
    for direction, end in ((1, last), (-1, first)):
        prev = labels[start] == track
        steps = []
        z = start
        while True:
            z += direction
            if not 0 <= z < len(labels) or abs(z - end) > past and (z - end) * direction > 0:
                break
            row, col = innermost_pixel(prev)
            click = [Click(float(row), float(col), True)]
            predictor.set_image(images[z])
            guided = predictor.predict(click, prev_mask=prev.astype(np.float32))
            predictor.reset()
            fresh = predictor.predict(click)
            mask, gt = guided > 0.49, labels[z] == track
            figures = StepFigures.of(guided, fresh, prev, (row, col), images[z],
                                     images[z - direction])
            steps.append({
                "z": z, "inside": bool((z - end) * direction <= 0), **figures.__dict__,
                "iou_gt": float((mask & gt).sum() / max((mask | gt).sum(), 1)),
                "fresh_iou_gt": float(((fresh > 0.49) & gt).sum()
                                      / max(((fresh > 0.49) | gt).sum(), 1)),
            })
            if not mask.any():
                break
            prev = mask
        out["steps"][str(direction)] = steps
    return out


def _fires(rule, step: dict) -> bool:
    return rule(StepFigures(**{k: step[k] for k in StepFigures.__dataclass_fields__}))


def apply_rule(rule, trajectories: list[dict]) -> dict:
    """Per rule: objects with no plane past the end, worst overshoot, planes missed, IoU."""
    over, missed, ious = [], [], []
    for t in trajectories:
        worst = 0
        for steps in t["steps"].values():
            past = 0
            for s in steps:
                if _fires(rule, s):
                    break
                if s["inside"]:
                    ious.append(s["iou_gt"])
                else:
                    past += 1
            missed.append(sum(s["inside"] for s in steps) - sum(
                s["inside"] for s in steps[: _written(rule, steps)]))
            worst = max(worst, past)
        over.append(worst)
    over = np.asarray(over)
    return {"objects": len(over), "share_no_overshoot": round(float((over == 0).mean()), 4),
            "max_overshoot": int(over.max()), "mean_overshoot": round(float(over.mean()), 3),
            "planes_missed_per_object_side": round(float(np.mean(missed)), 3),
            "mean_iou_written_inside": round(float(np.mean(ious)), 4) if ious else None}


def _written(rule, steps) -> int:
    for i, s in enumerate(steps):
        if _fires(rule, s):
            return i
    return len(steps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--past", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--steps", type=Path, help="also write every step's figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    predictor = make_predictor(load_model(args.model).eval(), "window")
    stacks = {f"synthetic{seed}": synthetic_stack(seed) for seed in range(4)}
    if DATA.is_dir():
        stacks["isbi2012_em"] = em_stack()
    report = {"benchmark": "propagation", "model": args.model, "mode": "window",
              "past": args.past, "machine": {"platform": platform.platform()}, "rules": {}}
    trajectories = {}
    for name, (images, labels) in stacks.items():
        ids = [k for k in np.unique(labels[labels > 0])
               if sum((labels[z] == k).any() for z in range(len(labels))) >= 3]
        trajectories[name] = [trajectory(predictor, images, labels, k, args.past) for k in ids]
        print(f"{name}: {len(ids)} objects", flush=True)
    groups = {"synthetic": [t for n, ts in trajectories.items() if n.startswith("synthetic")
                            for t in ts],
              "isbi2012_em": trajectories.get("isbi2012_em", [])}
    for rule_name, rule in STOP_RULES.items():
        report["rules"][rule_name] = {g: apply_rule(rule, ts) for g, ts in groups.items() if ts}
        print(rule_name, report["rules"][rule_name], flush=True)
    report["chosen"] = STOP_RULE
    if args.steps:
        args.steps.write_text(json.dumps(trajectories) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
