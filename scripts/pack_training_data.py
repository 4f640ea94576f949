"""Copy the train images of the shared sets into one folder small enough to travel to a GPU
machine (the device tool carries at most 64 MiB, the work tree included).

Only the images the split file lists as train are copied (the validation images stay here);
label images are re-saved with zlib compression (lossless); ``--keep SET=N`` keeps N train
images of a set, drawn at random with ``--seed``. ``stardist_nuclei2d`` has no train image: its
one (val) image is copied so that the run's validation has objects. One random generator
draws for all kept sets in the split file's order (so the draw of one set depends on the
others' N). The GPU runs of runs/gpu3 (benchmarks/results/history_to_2026-12-07.md) used the
defaults (34 MB; docs/training.md):

    python scripts/pack_training_data.py --out runs/gpu/data
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import tifffile

from napari_ritm.evaluation.folders import DatasetError, image_label_pairs

ROOT = Path(__file__).resolve().parents[1]
SPLIT = ROOT / "recipes/shared_split.json"
KEEP = ("emps_particles=50", "usiigaci_phase=12", "weizmann_horse=150")


def parse_keep(items: list[str], split: dict) -> dict[str, int]:
    """``SET=N`` items as {set: N}; raises ValueError naming the item when one is not a set of
    the split with N between 1 and its train images."""
    keep = {}
    for item in items:
        name, sep, count = item.partition("=")
        if not sep or not count.isdigit():
            raise ValueError(f"--keep {item}: expected SET=N, e.g. emps_particles=50")
        if name not in split:
            raise ValueError(f"--keep {item}: no set {name!r}; sets: {', '.join(split)}")
        if not 1 <= int(count) <= len(split[name]["train"]):
            raise ValueError(f"--keep {item}: {name} has {len(split[name]['train'])} train "
                             "images; keep 1 to all of them")
        keep[name] = int(count)
    return keep


def pack(data: Path, out: Path, split: dict, keep: dict[str, int],
         seed: int) -> dict[str, tuple[int, int]]:
    """Write the packed sets of ``split`` (its ``sets``) under ``out``; returns {set: (images,
    bytes)}. Raises DatasetError (a ValueError) when an image or its labels are missing."""
    rng = np.random.default_rng(seed)
    chosen = {}
    for name, entry in split.items():  # the split file's order: the draws depend on it
        stems = sorted(entry["train"]) or list(entry["val"])
        if name in keep:
            stems = sorted(rng.choice(stems, keep[name], replace=False))
        pairs = {image.stem: (image, labels) for image, labels in image_label_pairs(data / name)}
        if missing := [stem for stem in stems if stem not in pairs]:
            raise DatasetError(f"{data / name}: no image for {', '.join(missing)}")
        chosen[name] = [pairs[stem] for stem in stems]
    sizes = {}
    for name, images in chosen.items():  # every image found before anything is written
        (out / name / "images").mkdir(parents=True)
        (out / name / "labels").mkdir(parents=True)
        size = 0
        for image, labels in images:
            shutil.copy(image, out / name / "images" / image.name)
            packed = out / name / "labels" / labels.name
            tifffile.imwrite(packed, tifffile.imread(labels), compression="zlib")
            size += image.stat().st_size + packed.stat().st_size
        sizes[name] = (len(images), size)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--out", type=Path, required=True, help="a folder that does not exist")
    parser.add_argument("--keep", nargs="*", default=list(KEEP), metavar="SET=N",
                        help="train images kept of each set named, drawn at random; these "
                        f"replace the defaults ({' '.join(KEEP)}); sets not named keep all "
                        "(a bare --keep keeps every train image, 71 MB)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists: give a new folder")
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: no such folder (the shared sets)")
    split = json.loads(SPLIT.read_text())["sets"]
    try:
        sizes = pack(args.data, args.out, split, parse_keep(args.keep, split), args.seed)
    except ValueError as err:
        parser.error(str(err))
    for name, (count, size) in sizes.items():
        print(f"{name}: {count} images, {size / 1e6:.1f} MB")
    total = sum(s for _, s in sizes.values())
    print(f"total {total / 1e6:.1f} MB" + (" (over the 64 MiB the device takes, with the work "
                                             "tree)" if total > 64 * 2**20 else ""))


if __name__ == "__main__":
    main()
