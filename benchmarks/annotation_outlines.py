"""Where each set's annotators drew the outline on the intensity profile of a nucleus.

Sets annotated with different conventions ask for different masks of the same nucleus; a model
trained on one convention loses IoU on another. Per object (at least 30 px, on the val images of
the committed split): ``bg`` is the median grey level in a ring 3-6 px outside it (pixels of no
object), ``fg`` the median of its interior eroded by 2 px; the level of a ring is its mean grey
level as ``(v - bg) / (fg - bg)``, for the 1-px ring just inside the outline and the one just
outside. Objects with ``|fg - bg|`` under 5 grey levels (of 255) or too few ring pixels are
skipped. Also: the mean IoU of an annotated mask grown by one pixel (4-neighbours) with itself,
what a model drawing one pixel wider than the annotators gets at best. Results (median and
quartiles per set) go to ``benchmarks/results/annotation_outlines.json``.

    python benchmarks/annotation_outlines.py --sets stardist_nuclei2d dsb2018 coelho_nuclei
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from common import DATA, RESULTS, SPLIT
from scipy import ndimage as ndi

from napari_ritm.training.data import apply_split, load_split, read_folder

MIN_AREA = 30


def ring_levels(grey: np.ndarray, labels: np.ndarray) -> list[tuple[float, float, float]]:
    """(inner ring level, outer ring level, IoU of the mask grown by one pixel with itself) of
    each usable object of one image."""
    any_object = labels > 0
    out = []
    for i in np.unique(labels)[1:]:
        mask = labels == i
        if mask.sum() < MIN_AREA:
            continue
        inner = mask & ~ndi.binary_erosion(mask)
        outer = ndi.binary_dilation(mask) & ~any_object
        far = (ndi.binary_dilation(mask, iterations=6) & ~ndi.binary_dilation(mask, iterations=3)
               & ~any_object)
        core = ndi.binary_erosion(mask, iterations=2)
        if far.sum() < 10 or core.sum() < 5 or outer.sum() < 5:
            continue
        bg, fg = np.median(grey[far]), np.median(grey[core])
        if abs(fg - bg) < 5:
            continue
        out.append(((grey[inner].mean() - bg) / (fg - bg), (grey[outer].mean() - bg) / (fg - bg),
                    mask.sum() / ndi.binary_dilation(mask).sum()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+",
                        default=["stardist_nuclei2d", "dsb2018", "coelho_nuclei"])
    parser.add_argument("--out", type=Path, default=RESULTS / "annotation_outlines.json")
    args = parser.parse_args(argv)
    split = load_split(SPLIT)
    results = {"benchmark": "annotation_outlines", "min_area": MIN_AREA, "sets": {}}
    for name in args.sets:
        if not (DATA / name).is_dir():
            print(f"{DATA / name} not found (set NAPARI_RITM_SHARED)", file=sys.stderr)
            return 1
        _, val, _ = apply_split(read_folder(DATA / name), split)
        levels = np.array([lv for s in val for lv in ring_levels(s.image.mean(-1), s.labels)])
        entry = {"objects": len(levels), "iou_grown_1px": round(float(levels[:, 2].mean()), 3)}
        for j, ring in enumerate(("inner_ring", "outer_ring")):
            q = np.percentile(levels[:, j], [25, 50, 75])
            entry[ring] = {"median": round(float(q[1]), 3),
                           "quartiles": [round(float(q[0]), 3), round(float(q[2]), 3)]}
        results["sets"][name] = entry
        print(f"{name}: {len(levels)} objects, level inside the outline "
              f"{entry['inner_ring']['median']:.2f}, outside {entry['outer_ring']['median']:.2f}, "
              f"grown by 1 px: IoU {entry['iou_grown_1px']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
