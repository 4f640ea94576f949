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

From a snapshot of github.com/funalab/QCANet (MIT; ``/work/.mirror/funalab+QCANet/repo``):

- ``qcanet_nuclei3d``: ``example_datasets``, two 51 x 120 x 122 fluorescence stacks of mouse
  embryos at the 8- and 16-cell stages (Tokuoka et al., npj Syst Biol Appl 2020,
  doi:10.1038/s41540-020-00152-8), z steps 2.18 pixels apart (the authors' x:y:z resolution),
  nuclei about 17 px across and 10 slices deep; raw uint16 and
  the authors' nucleus masks (``images_nsn``), whose connected components are the nuclei (one
  per marker of ``images_ndn``: 8 and 16).

    python scripts/import_stacks.py [--plantseg /work/.mirror/kreshuklab+plant-seg/repo]
                                    [--qcanet /work/.mirror/funalab+QCANet/repo]
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
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "gonuclear_nuclei3d": {
        "repo": "plantseg",
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
        "repo": "plantseg",
        "files": {"sample_ovule": "tests/resources/sample_ovule.h5"},
        "readme": "1 crop of 32 x 128 x 128 voxels of the PlantSeg Arabidopsis ovules dataset: "
                  "cell boundaries, confocal, raw uint8 and 3D cell labels (Wolny et al., eLife "
                  "2020, doi:10.7554/eLife.57613; CC BY 4.0), from github.com/kreshuklab/"
                  "plant-seg (MIT), tests/resources/sample_ovule.h5.",
    },
    "qcanet_nuclei3d": {
        "repo": "qcanet",
        "files": {"8_cell_stage": "example_datasets/images_{}/8_cell_stage.tif",
                  "16_cell_stage": "example_datasets/images_{}/16_cell_stage.tif"},
        "readme": "2 stacks of 51 x 120 x 122 voxels: mouse embryos at the 8- and 16-cell "
                  "stages, nuclei in fluorescence, z steps 2.18 pixels apart (the authors' x:y:z "
                  "resolution 1:1:2.18), raw uint16 (Tokuoka et al., npj Syst Biol Appl "
                  "2020, doi:10.1038/s41540-020-00152-8), from github.com/funalab/QCANet (MIT), "
                  "example_datasets. Labels: the connected components of the authors' nucleus "
                  "masks (images_nsn), one per nucleus marker (images_ndn).",
    },
}


def git_file(repo: Path, path: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={repo}", "show", f"HEAD:{path}"], check=True,
                          capture_output=True).stdout


def read_h5(repo: Path, path: str) -> tuple[np.ndarray, np.ndarray]:
    """A PlantSeg test file: (raw, labels)."""
    import h5py

    with h5py.File(io.BytesIO(git_file(repo, path)), "r") as f:
        return np.asarray(f["raw"]), np.asarray(f["label"])


def read_qcanet(repo: Path, path: str) -> tuple[np.ndarray, np.ndarray]:
    """A QCANet example stack: (raw, nuclei as the components of its mask); ValueError when a
    component does not hold exactly one of the authors' nucleus markers."""
    raw, mask, markers = (tifffile.imread(io.BytesIO(git_file(repo, path.format(kind))))
                          for kind in ("raw", "nsn", "ndn"))
    labels, count = ndimage.label(mask > 0)
    marked, _ = ndimage.label(markers > 0)
    for index in range(1, count + 1):
        if len(np.unique(marked[(labels == index) & (marked > 0)])) != 1:
            raise ValueError(f"{path.format('nsn')}: component {index} holds no or several "
                             "nucleus markers")
    return raw, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plantseg", type=Path,
                        default=Path("/work/.mirror/kreshuklab+plant-seg/repo"))
    parser.add_argument("--qcanet", type=Path,
                        default=Path("/work/.mirror/funalab+QCANet/repo"))
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "data",
                        help="where the folders go (default: runs/data, kept out of git, where "
                        "benchmarks/stacks.py reads them; $NAPARI_RITM_STACKS moves it)")
    args = parser.parse_args()
    readers = {"plantseg": (read_h5, args.plantseg), "qcanet": (read_qcanet, args.qcanet)}
    for name, spec in SETS.items():
        read, repo = readers[spec["repo"]]
        folder = args.out / name
        for sub in ("images", "labels"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        for stem, path in spec["files"].items():
            raw, labels = read(repo, path)
            tifffile.imwrite(folder / "images" / f"{stem}.tif", raw, compression="zlib")
            tifffile.imwrite(folder / "labels" / f"{stem}.tif", labels.astype(np.uint16),
                             compression="zlib")
            print(f"{name}/{stem}: {raw.shape} {raw.dtype}, {len(np.unique(labels)) - 1} objects")
        (folder / "README.md").write_text(f"# {name}\n\n{spec['readme']}\n\nWritten by "
                                          "napari-ritm's scripts/import_stacks.py.\n")


if __name__ == "__main__":
    main()
