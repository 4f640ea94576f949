"""Write public 3D label stacks into the shared layout, for the 3D benchmark (benchmarks/stacks.py).

From a snapshot of github.com/kreshuklab/plant-seg (MIT; the search tool's ``fetch`` brings it
to ``/work/.mirror/kreshuklab+plant-seg/repo``), read with git, nothing checked out:

- ``gonuclear_nuclei3d``: ``tests/resources/data/{train,val}/113[567]_mini.h5``, three 100^3 crops
  of the GoNuclear training set (Arabidopsis ovule nuclei, confocal; Vijayan et al., Development
  2024, doi:10.1242/dev.202800; BioImage Archive S-BIAD1026), raw and nucleus labels; voxels
  0.284 x 0.127 x 0.127 um.
- ``ovule_cells3d``: ``tests/resources/sample_ovule.h5``, a 32 x 128 x 128 crop of the PlantSeg
  Arabidopsis ovules (cell boundaries, confocal; Wolny et al., eLife 2020; CC BY 4.0), raw and
  cell labels.

    python scripts/import_stacks.py [--repo /work/.mirror/kreshuklab+plant-seg/repo]
                                    [--out runs/data]

Needs h5py (``pip install h5py``; the ``benchmarks`` extra has it). Each folder gets a
README.md with the source and licence.
"""
from __future__ import annotations

import argparse
import io
import subprocess
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "gonuclear_nuclei3d": {
        "files": {"1135": "tests/resources/data/train/1135_mini.h5",
                  "1136": "tests/resources/data/train/1136_mini.h5",
                  "1137": "tests/resources/data/val/1137_mini.h5"},
        "readme": "3 crops of 100 x 100 x 100 voxels (0.284 x 0.127 x 0.127 um) of the GoNuclear "
                  "training set: Arabidopsis ovule nuclei, confocal, raw uint8 and 3D nucleus "
                  "labels (Vijayan et al., Development 2024, doi:10.1242/dev.202800; BioImage "
                  "Archive S-BIAD1026), as committed by a GoNuclear author to "
                  "github.com/kreshuklab/plant-seg (MIT), tests/resources/data.",
    },
    "ovule_cells3d": {
        "files": {"sample_ovule": "tests/resources/sample_ovule.h5"},
        "readme": "1 crop of 32 x 128 x 128 voxels of the PlantSeg Arabidopsis ovules dataset: "
                  "cell boundaries, confocal, raw uint8 and 3D cell labels (Wolny et al., eLife "
                  "2020, doi:10.7554/eLife.57613; CC BY 4.0), from github.com/kreshuklab/"
                  "plant-seg (MIT), tests/resources/sample_ovule.h5.",
    },
}


def read_h5(repo: Path, path: str) -> tuple[np.ndarray, np.ndarray]:
    import h5py

    blob = subprocess.run(["git", f"--git-dir={repo}", "show", f"HEAD:{path}"], check=True,
                          capture_output=True).stdout
    with h5py.File(io.BytesIO(blob), "r") as f:
        return np.asarray(f["raw"]), np.asarray(f["label"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path,
                        default=Path("/work/.mirror/kreshuklab+plant-seg/repo"))
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "data",
                        help="where the folders go (default: runs/data, kept out of git, where "
                        "benchmarks/stacks.py reads them; $NAPARI_RITM_STACKS moves it)")
    args = parser.parse_args()
    for name, spec in SETS.items():
        folder = args.out / name
        for sub in ("images", "labels"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        for stem, path in spec["files"].items():
            raw, labels = read_h5(args.repo, path)
            tifffile.imwrite(folder / "images" / f"{stem}.tif", raw, compression="zlib")
            tifffile.imwrite(folder / "labels" / f"{stem}.tif", labels.astype(np.uint16),
                             compression="zlib")
            print(f"{name}/{stem}: {raw.shape} {raw.dtype}, {len(np.unique(labels)) - 1} objects")
        (folder / "README.md").write_text(f"# {name}\n\n{spec['readme']}\n\nWritten by "
                                          "napari-ritm's scripts/import_stacks.py.\n")


if __name__ == "__main__":
    main()
