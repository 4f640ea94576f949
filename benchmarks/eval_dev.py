"""Dev-set NoC of the classic baselines and, when it loads, the default model.

Runs the ``napari-ritm evaluate`` protocol (20 clicks, stop at IoU 0.90, threshold 0.49) on the
shared dev sets and writes ``benchmarks/results/eval_dev.json`` (one ``runs`` entry per model, each
in the ``evaluate --json`` shape) and an IoU-vs-clicks plot ``eval_dev.png``; prints the NoC table.

Sizes (defaults, chosen to run in ~15 minutes for both baselines on 2 busy CPU cores): at most
``--objects`` (30) objects per set with at least ``--min-area`` (30) pixels; dsb2018 and
weizmann_horse take 1 object per image (so 30 different images), isbi2012_em 2 per slice,
stardist_nuclei2d (one image) 30 nuclei spread over its ids.

    python benchmarks/eval_dev.py [--objects 30] [--models baseline:random_walker ...] [--mode exact]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from tqdm import tqdm

from napari_ritm.commands import UsageError
from napari_ritm.commands.evaluate import format_table, make_predictor
from napari_ritm.evaluation.datasets import InstanceDataset
from napari_ritm.evaluation.noc import DatasetResult, evaluate_dataset
from napari_ritm.evaluation.plots import plot_iou_curves

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NAPARI_RITM_SHARED", REPO.parent / "shared")) / "data"
RESULTS = REPO / "benchmarks" / "results"
#: dev set -> objects per image (None: as many as --objects allows, spread over the ids)
SETS = {"dsb2018": 1, "isbi2012_em": 2, "weizmann_horse": 1, "stardist_nuclei2d": None}
MODELS = ("baseline:watershed", "baseline:random_walker", "default")


def _save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=30, help="objects per set (30)")
    parser.add_argument("--min-area", type=int, default=30, help="smallest object, pixels (30)")
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--mode", choices=("exact", "fast"), default="exact")
    parser.add_argument("--out", type=Path, default=RESULTS / "eval_dev.json")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"dev sets not found at {DATA} (set NAPARI_RITM_SHARED)", file=sys.stderr)
        return 1

    datasets = [InstanceDataset(DATA / name, max_objects_per_image=k or args.objects,
                                min_area=args.min_area, limit=args.objects)
                for name, k in SETS.items()]
    payload = {
        "benchmark": "eval_dev",
        "protocol": {"max_clicks": args.clicks, "stop_iou": 0.90, "pred_thresh": 0.49,
                     "mode": args.mode, "min_area": args.min_area},
        "sets": {ds.name: {"objects": len(ds), "max_objects_per_image": k or args.objects}
                 for ds, k in zip(datasets, SETS.values())},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "runs": [],
        "skipped": {},
    }
    curves = {}
    for model in args.models:
        try:
            predictor = make_predictor(model, args.mode)
        except UsageError as err:
            print(f"skipping {model}: {err}", file=sys.stderr)
            payload["skipped"][model] = str(err).splitlines()[0]
            continue
        run = {"model": model, "datasets": {}, "wall_s": 0.0}
        payload["runs"].append(run)
        start = time.perf_counter()
        for ds in datasets:
            result = DatasetResult(ds.name, max_clicks=args.clicks)
            with tqdm(total=len(ds), desc=f"{model} {ds.name}", unit="obj") as bar:
                evaluate_dataset(predictor, ds, result, on_sample=lambda s, r: bar.update())
            run["datasets"][ds.name] = result.to_json()
            run["wall_s"] = round(time.perf_counter() - start, 1)
            curves[f"{model} / {ds.name}"] = [s["ious"] for s in result.samples]
            _save(args.out, payload)
        print(format_table(run))
    _save(args.out, payload)
    if curves:
        plot_iou_curves(curves, args.out.with_suffix(".png"), max_clicks=args.clicks,
                        title="dev sets (stop at IoU 0.90; stopped objects keep their IoU)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
