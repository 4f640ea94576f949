"""Build the rehearsal images shipped in the package (``src/napari_ritm/data/rehearsal``).

Adapting a model to a user's labels mixes these images into half of each batch so that the
model keeps what it knew of other kinds of images (benchmarks/adapt.py measures it). They are
crops of the first ``--count`` dsb2018 *train* images of the committed split (the val images
score the model, so none of them is used): dsb2018 is CC0 (BBBC038) and mixes fluorescence,
brightfield and H&E nuclei. Each crop is the ``--size`` square window holding the most labelled
pixels; an object the window cuts keeps its part inside.

    python scripts/make_rehearsal_pack.py [--data ../shared/data] [--count 8] [--size 256]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tifffile
from skimage.io import imsave
from skimage.segmentation import relabel_sequential

from napari_ritm.training.data import load_split, read_folder

ROOT = Path(__file__).resolve().parents[1]
SPLIT = ROOT / "recipes/shared_split.json"
OUT = ROOT / "src/napari_ritm/data/rehearsal"
SET = "dsb2018"


def densest_window(labels: np.ndarray, size: int, stride: int = 16) -> tuple[int, int]:
    """Top-left corner of the ``size`` square window of ``labels`` with the most labelled
    pixels (on a ``stride`` grid, the last row and column of windows included)."""
    h, w = labels.shape
    counts = np.pad((labels > 0).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    rows = sorted({*range(0, max(h - size, 0) + 1, stride), max(h - size, 0)})
    cols = sorted({*range(0, max(w - size, 0) + 1, stride), max(w - size, 0)})
    best, corner = -1, (0, 0)
    for y in rows:
        for x in cols:
            y1, x1 = min(y + size, h), min(x + size, w)
            n = counts[y1, x1] - counts[y, x1] - counts[y1, x] + counts[y, x]
            if n > best:
                best, corner = n, (y, x)
    return corner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    train = set(load_split(SPLIT)["sets"][SET]["train"])
    chosen = [s for s in read_folder(args.data / SET) if s.name in train][:args.count]
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    (OUT / "labels").mkdir(parents=True, exist_ok=True)
    for sample in chosen:
        y, x = densest_window(sample.labels, args.size)
        window = np.s_[y:y + args.size, x:x + args.size]
        image, labels = sample.image[window], sample.labels[window]
        if np.ptp(image, axis=(0, 1)).max() == 0 or not labels.any():
            continue
        gray = bool((image == image[..., :1]).all())
        imsave(OUT / "images" / f"{sample.name}.png", image[..., 0] if gray else image,
               check_contrast=False)
        ids = relabel_sequential(labels)[0].astype(np.uint16)
        tifffile.imwrite(OUT / "labels" / f"{sample.name}.tif", ids, compression="zlib")
        print(f"{sample.name}: {image.shape[:2]} at ({y}, {x}), {int(ids.max())} objects")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
