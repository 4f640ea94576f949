"""Write the 3D training sets the propagation samples learn from, in the shared layout.

- ``synthetic_nuclei3d/``: ``--synthetic`` stacks of :func:`napari_ritm.evaluation.stacks.
  synthetic_nuclei` (seeds 0, 1, ...; the kinds in turn). The 3D benchmark uses seeds from
  1000 on, so it never measures on a training stack.
- ``isbi2012_em/``: the shared ``isbi2012_em`` set restacked: the serial sections that the
  split file keeps for training, cut into runs of consecutive sections, each run one stack
  whose cells keep their id from section to section
  (:func:`napari_ritm.evaluation.stacks.linked_sections`); the validation sections as they
  are, so the split file's validation names still find them. Train on it instead of the
  shared folder.

    python scripts/make_stack_sets.py [--out runs/data] [--synthetic 24]

Each stack is ``images/<name>.tif`` (Z, H, W) and ``labels/<name>.tif`` (Z, H, W) int32;
``napari-ritm train --data <folder>`` reads them slice by slice, with the neighbouring slices'
labels for ``--propagate-prob``.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import tifffile

from napari_ritm.evaluation.folders import image_label_pairs, read_array
from napari_ritm.evaluation.stacks import STACK_KINDS, linked_sections, synthetic_nuclei

ROOT = Path(__file__).resolve().parents[1]
SPLIT = ROOT / "recipes/shared_split.json"


def write_stack(folder: Path, name: str, image: np.ndarray, labels: np.ndarray) -> None:
    for sub, array in (("images", image), ("labels", labels)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(folder / sub / f"{name}.tif", array, compression="zlib")


def em_runs(data: Path, train: list[str]) -> list[list[Path]]:
    """Runs of consecutive training sections (slice<k> names), as lists of (image, label)."""
    pairs = {p.stem: (p, q) for p, q in image_label_pairs(data / "isbi2012_em")}
    numbers = sorted(int(re.fullmatch(r"slice(\d+)", n).group(1)) for n in train)
    runs, current = [], []
    for k in numbers:
        if current and k != current[-1] + 1:
            runs.append(current)
            current = []
        current.append(k)
    runs.append(current)
    return [[pairs[f"slice{k:02d}"] for k in run] for run in runs if len(run) >= 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "runs/data")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--synthetic", type=int, default=24, help="synthetic stacks (24)")
    args = parser.parse_args()

    kinds = list(STACK_KINDS)
    for seed in range(args.synthetic):
        kind = kinds[seed % len(kinds)]
        stack = synthetic_nuclei(seed, kind)
        write_stack(args.out / "synthetic_nuclei3d", f"syn{seed:03d}_{kind}", stack.image,
                    stack.labels)
    print(f"{args.synthetic} synthetic stacks in {args.out / 'synthetic_nuclei3d'}")

    split = json.loads(SPLIT.read_text())["sets"]["isbi2012_em"]
    em = args.out / "isbi2012_em"
    for run in em_runs(args.data, split["train"]):
        image = np.stack([read_array(p) for p, _ in run])
        labels = linked_sections([read_array(q) for _, q in run])
        name = f"{run[0][0].stem}-{run[-1][0].stem}"
        write_stack(em, name, image, labels)
        print(f"EM run {name}: {len(run)} sections, {len(np.unique(labels)) - 1} linked cells")
    for image_path, label_path in image_label_pairs(args.data / "isbi2012_em"):
        if image_path.stem in split["val"]:
            shutil.copyfile(image_path, em / "images" / image_path.name)
            shutil.copyfile(label_path, em / "labels" / label_path.name)


if __name__ == "__main__":
    main()
