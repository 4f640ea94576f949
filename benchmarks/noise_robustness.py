"""NoC on grainy images: the dsb2018 val objects of eval_dev.py, with photon (Poisson) noise.

Fluorescence images at low counts are grainy (stardist_nuclei2d is one); a model trained on
clean 8-bit images can lose clicks on them. Each val image of dsb2018 is scaled to [0, 1] and
replaced by ``poisson(image * photons) / photons`` (seeded per image, the same noise in every
channel of a grey image), then evaluated with eval_dev.py's protocol (window mode, 20 clicks,
stop at IoU 0.90, 5 objects per image). Photons ``none`` is the clean image. Results per model
and photon count go to ``benchmarks/results/noise.json`` (kept across calls, replaced per model).

    python benchmarks/noise_robustness.py --models default runs/avg.pth --photons none 100 40
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile
from common import DATA, RESULTS, SPLIT, machine
from eval_dev import SETS, _readable, evaluate_argv

from napari_ritm.cli import main as cli
from napari_ritm.training.augment import Augmenter
from napari_ritm.training.data import load_split, read_folder

SET = "dsb2018"


def write_noisy_set(photons: float | None, out: Path) -> Path:
    """The val images of SET with photon noise (``None``: unchanged) under ``out``/SET."""
    root = out / SET
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    val = set(load_split(SPLIT)["sets"][SET]["val"])
    for i, sample in enumerate(read_folder(DATA / SET)):  # i seeds the noise of each image
        if sample.name not in val:
            continue
        image = sample.image
        if photons is not None:
            noise = Augmenter((1, 1), photon_range=(photons, photons))
            noisy = noise.photon_noise(image / np.float32(255), np.random.default_rng(i))
            image = np.round(noisy * 255).astype(np.uint8)
        iio.imwrite(root / "images" / f"{sample.name}.png", image)
        tifffile.imwrite(root / "labels" / f"{sample.name}.tif", sample.labels)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default"])
    parser.add_argument("--photons", nargs="+", default=["none", "100", "40"],
                        help="photon counts at full intensity ('none': the clean images)")
    parser.add_argument("--out", type=Path, default=RESULTS / "noise.json")
    args = parser.parse_args(argv)
    if not (DATA / SET).is_dir():
        print(f"{DATA / SET} not found (set NAPARI_RITM_SHARED)", file=sys.stderr)
        return 1
    levels = [None if p == "none" else float(p) for p in args.photons]
    results = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": {}}
    results.update(benchmark="noise_robustness", set=SET, machine=machine(),
                   protocol=f"eval_dev.py's {SET} protocol ({SETS[SET][0]} objects per val "
                   "image, window mode, 20 clicks, stop at IoU 0.90)")
    for model in args.models:
        run = {}
        for photons in levels:
            with tempfile.TemporaryDirectory() as tmp:
                data = write_noisy_set(photons, Path(tmp))
                argv_eval = evaluate_argv(model, "window", SET, 30, 20)
                argv_eval[argv_eval.index("--data") + 1] = str(data)
                report = Path(tmp) / "report.json"
                if cli([*argv_eval, "--json", str(report)]) != 0:
                    return 1
                d = json.loads(report.read_text())["datasets"][SET]
            iou1 = float(np.mean([s["ious"][0] for s in d["samples"]]))
            run["none" if photons is None else f"{photons:g}"] = {
                "NoC@85": d["NoC@85"], "NoC@90": d["NoC@90"], "iou1": round(iou1, 4),
                "objects": d["objects"]}
        results["runs"][_readable(model)] = run
        print(model, json.dumps(run))
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
