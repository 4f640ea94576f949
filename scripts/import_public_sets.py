"""Write public 2D instance sets of kinds the shared sets lack into the shared layout.

Each set comes from a snapshot of a public GitHub repository (the search tool's ``fetch`` brings
it to ``/work/.mirror/<owner>+<name>/repo``), read with git, nothing checked out:

- ``axondeepseg_sem``: scanning EM of rat spinal cord, myelinated axons
  (github.com/axondeepseg/data_axondeepseg_sem, MIT; Zaimi et al., Sci. Rep. 2018,
  doi:10.1038/s41598-018-22181-4): 10 grey images of 8 rats, 0.18 um pixels, with manual axon
  masks. Each axon is a connected component of the axon mask (the myelin sheaths keep
  neighbouring axons apart).
- ``bitdepth_nuclei``: DAPI-stained nuclei in tissue sections of five mouse organs at 20x, 40x and
  63x (github.com/masih4/BitDepth_NucSeg, Apache-2.0; Mahbod et al., Diagnostics 2021,
  doi:10.3390/diagnostics11060967): 70 images of 512 x 512, the 16-bit originals, with
  manual instance labels (commit a2636522, where the files are not yet zipped).

Objects under 10 pixels are dropped and ids run 1..n (as in the shared sets). Each folder gets a
README.md with the source and licence, and ``--split`` adds the sets to the training split file
(val: ceil(20 %) of the images, seed 0, for axondeepseg_sem whole rats with one image each;
halves val_select / val_report at random, seed 2026), leaving the other sets as they are.

    python scripts/import_public_sets.py [--mirror /work/.mirror] [--out runs/data]
                                         [--split recipes/shared_split.json]
"""
from __future__ import annotations

import argparse
import io
import json
import math
import re
import subprocess
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile
from scipy import ndimage
from skimage.segmentation import relabel_sequential

ROOT = Path(__file__).resolve().parents[1]
MIN_AREA = 10
AXON_REPO = "axondeepseg+data_axondeepseg_sem"
NUCLEI_REPO = "masih4+BitDepth_NucSeg"
NUCLEI_COMMIT = "a2636522"
READMES = {
    "axondeepseg_sem": (
        "Scanning electron microscopy of rat spinal cord (10 images of 8 rats, 744-2001 px, "
        "0.18 um pixels, 8-bit grey) with manual axon segmentations; each axon (a connected "
        "component of the axon mask) is one object. From "
        "github.com/axondeepseg/data_axondeepseg_sem (MIT License, Copyright (c) 2020 ivadomed; "
        "dataset doi:10.5281/zenodo.5498378). Cite Zaimi et al., AxonDeepSeg, Scientific "
        "Reports 8, 3816 (2018), doi:10.1038/s41598-018-22181-4."
    ),
    "bitdepth_nuclei": (
        "DAPI-stained nuclei in tissue sections (mouse bone, heart, kidney, liver, muscle...; "
        "20x, 40x air, 40x oil, 63x oil), 70 images of 512 x 512, 16-bit originals, with manual "
        "instance labels. From github.com/masih4/BitDepth_NucSeg (Apache License 2.0), commit "
        "a2636522. Cite Mahbod et al., Diagnostics 11(6), 967 (2021), "
        "doi:10.3390/diagnostics11060967."
    ),
}


def git_ls(repo: Path, rev: str, path: str = "") -> list[str]:
    where = [path] if path else []
    out = subprocess.run(["git", f"--git-dir={repo}", "ls-tree", "-r", "--name-only", rev, *where],
                         check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def git_blob(repo: Path, rev: str, path: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={repo}", "show", f"{rev}:{path}"], check=True,
                          capture_output=True).stdout


def clean_labels(labels: np.ndarray) -> np.ndarray:
    """Ids under ``MIN_AREA`` pixels dropped, the rest renumbered 1..n, as uint16."""
    labels = np.asarray(labels, dtype=np.int64)
    areas = np.bincount(labels.ravel())
    labels = np.where(areas[labels] >= MIN_AREA, labels, 0)
    out = relabel_sequential(labels)[0]
    if out.max() > np.iinfo(np.uint16).max:
        raise ValueError("more objects than uint16 ids")
    return out.astype(np.uint16)


def axon_images(mirror: Path):
    """(name, image, labels, rat) of each axondeepseg_sem image."""
    repo = mirror / AXON_REPO / "repo"
    for path in git_ls(repo, "HEAD"):
        found = re.fullmatch(r"sub-(rat\d+)/micr/(sub-rat\d+_sample-(\w+)_SEM)\.png", path)
        if not found:
            continue
        rat, stem, sample = found.groups()
        image = iio.imread(io.BytesIO(git_blob(repo, "HEAD", path)))
        axon = iio.imread(io.BytesIO(git_blob(
            repo, "HEAD", f"derivatives/labels/sub-{rat}/micr/{stem}_seg-axon-manual.png")))
        if image.ndim == 3:
            image = image[..., 0]
        labels = ndimage.label(axon > 127)[0]  # 4-connected: diagonal touches stay apart
        yield f"{rat}_{sample}", image, clean_labels(labels), rat


def nuclei_images(mirror: Path):
    """(name, image, labels, None) of each bitdepth_nuclei image."""
    repo = mirror / NUCLEI_REPO / "repo"
    for path in git_ls(repo, NUCLEI_COMMIT, "data"):
        found = re.fullmatch(r"data/([^/]+)/images_16bit/(\w+)\.tif", path)
        if not found:
            continue
        folder, stem = found.groups()
        image = tifffile.imread(io.BytesIO(git_blob(repo, NUCLEI_COMMIT, path)))
        labels = tifffile.imread(io.BytesIO(git_blob(
            repo, NUCLEI_COMMIT, f"data/{folder}/label masks/{stem}.tif")))
        yield stem, image, clean_labels(labels), None  # stems name the magnification


def write_set(out: Path, name: str, items) -> dict[str, str | None]:
    """Writes images/ and labels/ of one set; returns name -> group (rat) of each image."""
    folder = out / name
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    groups, objects = {}, 0
    for stem, image, labels, group in items:
        if image.shape[:2] != labels.shape:
            raise ValueError(f"{name}/{stem}: image {image.shape} and labels {labels.shape}")
        suffix = "png" if image.dtype == np.uint8 else "tif"
        if suffix == "png":
            iio.imwrite(folder / "images" / f"{stem}.png", image)
        else:
            tifffile.imwrite(folder / "images" / f"{stem}.tif", image, compression="zlib")
        tifffile.imwrite(folder / "labels" / f"{stem}.tif", labels, compression="zlib")
        groups[stem] = group
        objects += int(labels.max())
    (folder / "README.md").write_text(f"# {name}\n\n{READMES[name]}\n\n{len(groups)} images, "
                                      f"{objects} objects of at least {MIN_AREA} px.\n")
    print(f"{folder}: {len(groups)} images, {objects} objects")
    return groups


def split_entry(groups: dict[str, str | None]) -> dict[str, list[str]]:
    """train / val / val_select / val_report names; by group (rat) when images have one: only
    groups of one image are drawn for val, so no group is on both sides."""
    names = sorted(groups)
    n_val = math.ceil(0.2 * len(names))
    rng = np.random.default_rng(0)
    if any(g is not None for g in groups.values()):
        counts: dict = {}
        for g in groups.values():
            counts[g] = counts.get(g, 0) + 1
        pool = sorted(n for n in names if counts[groups[n]] == 1)
    else:
        pool = names
    val = sorted(rng.permutation(pool)[:n_val].tolist())
    halves = np.random.default_rng(2026).permutation(val).tolist()
    return {"train": [n for n in names if n not in val], "val": val,
            "val_select": sorted(halves[: len(val) // 2]),
            "val_report": sorted(halves[len(val) // 2:])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "data")
    parser.add_argument("--split", type=Path, help="add the sets to this split file")
    args = parser.parse_args()
    groups = {"axondeepseg_sem": write_set(args.out, "axondeepseg_sem", axon_images(args.mirror)),
              "bitdepth_nuclei": write_set(args.out, "bitdepth_nuclei",
                                           nuclei_images(args.mirror))}
    if args.split is not None:
        split = json.loads(args.split.read_text())
        for name, g in groups.items():
            split["sets"][name] = split_entry(g)
        args.split.write_text(json.dumps(split, indent=1) + "\n")
        print(f"added {', '.join(groups)} to {args.split}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
