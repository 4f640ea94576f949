"""Copy the train images of the shared sets into one folder small enough to travel to a GPU
machine (the device tool carries at most 64 MiB, the work tree included).

Only the images the split file lists as train are copied (the validation images stay here);
label images are re-saved with zlib compression (lossless); ``--keep SET=N`` keeps N train
images of a set, drawn at random with ``--seed``. ``stardist_nuclei2d`` has no train image: its
one (val) image is copied so that the run's validation has objects. The GPU runs of
docs/models.md's runs/gpu3 used the defaults (34 MB; docs/training.md):

    python scripts/pack_training_data.py --out runs/gpu/data
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import tifffile

SPLIT = Path(__file__).parents[1] / "src/napari_ritm/training/recipes/shared_split.json"
KEEP = ("emps_particles=50", "usiigaci_phase=12", "weizmann_horse=150")


def pack(data: Path, out: Path, keep: dict[str, int], seed: int) -> dict[str, tuple[int, int]]:
    """Write the packed sets under ``out``; returns {set: (images, bytes)}."""
    split = json.loads(SPLIT.read_text())["sets"]
    rng = np.random.default_rng(seed)
    sizes = {}
    for name, entry in split.items():  # the split file's order: the draws depend on it
        stems = sorted(entry["train"])
        if name in keep:
            stems = sorted(rng.choice(stems, keep[name], replace=False))
        if not stems:
            stems = list(entry["val"])
        (out / name / "images").mkdir(parents=True)
        (out / name / "labels").mkdir(parents=True)
        size = 0
        for stem in stems:
            image = next((data / name / "images").glob(f"{stem}.*"))
            shutil.copy(image, out / name / "images" / image.name)
            labels = out / name / "labels" / f"{stem}.tif"
            tifffile.imwrite(labels, tifffile.imread(data / name / "labels" / f"{stem}.tif"),
                             compression="zlib")
            size += image.stat().st_size + labels.stat().st_size
        sizes[name] = (len(stems), size)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, required=True, help="a folder that does not exist")
    parser.add_argument("--keep", nargs="*", default=list(KEEP), metavar="SET=N",
                        help=f"train images kept per set (default: {' '.join(KEEP)})")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists: give a new folder")
    keep = {k: int(v) for k, v in (item.split("=") for item in args.keep)}
    sizes = pack(args.data, args.out, keep, args.seed)
    for name, (count, size) in sizes.items():
        print(f"{name}: {count} images, {size / 1e6:.1f} MB")
    print(f"total {sum(s for _, s in sizes.values()) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
