"""Dev-set NoC on the held-out (val) images: classic baselines and the default model.

Runs ``napari-ritm evaluate`` (20 clicks, stop at IoU 0.90, threshold 0.49) once per model, mode
and set on the val images of the committed split (``recipes/shared_split.json``: images
the default model never saw in training) and collects its JSON reports in
``benchmarks/results/eval_dev.json`` (one ``runs`` entry per model and mode, each in the
``evaluate --json`` shape, with the command lines it ran) and an IoU-vs-clicks plot of the
shipped model (the ``default`` window-mode run; every run when there is none) in
``eval_dev.png``; prints the NoC tables. Runs already in the file for the same protocol and sets
are kept unless re-run, so models can be evaluated one at a time (or by two processes at once).

``--subset val_select`` / ``val_report`` runs on one half of those images (the split file's
halves): choices are made on val_select, figures reported on val_report (results in
``eval_dev_<subset>.json``).

Objects (at least ``--min-area`` = 30 pixels, spread evenly over each image's ids):
dsb2018 5 per val image (9 images), isbi2012_em 10 per val slice (4 slices), weizmann_horse the
horse of every val image (66), stardist_nuclei2d 30 nuclei of its one (held-out) image,
coelho_nuclei 3 per val image (16 images), usiigaci_phase 6 per val image (7 images),
emps_particles 1 per val image (45 of the 78), axondeepseg_sem 40 axons (of one image per half),
bitdepth_nuclei 6 per val image (14 images). The last two are imported by
scripts/import_public_sets.py into runs/data (``NAPARI_RITM_STACKS``); v2.2 never saw them.

Models run with the mode's mirror averaging unless ``--no-flip`` (then the run is named
"<model> (no flip)"). The window mode averages with the mirror image since 2026-11-27: the
runs of the results file from before that are named "(no flip)" and have ``"flip": false``.

    python benchmarks/eval_dev.py [--models baseline:watershed default ...] [--modes window exact]
                                  [--no-flip]
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from common import DATA, REPO, SPLIT, set_dir
from common import RESULTS as RESULTS_DIR

from napari_ritm.cli import main as cli
from napari_ritm.evaluation.plots import plot_iou_curves

RESULTS = RESULTS_DIR
#: dev set -> (objects per val image, at most this many objects in the set)
SETS = {"dsb2018": (5, 45), "isbi2012_em": (10, 40), "weizmann_horse": (1, 66),
        "stardist_nuclei2d": (30, 30), "coelho_nuclei": (3, 45), "usiigaci_phase": (6, 42),
        "emps_particles": (1, 45), "axondeepseg_sem": (40, 80), "bitdepth_nuclei": (6, 42)}
MODELS = ("baseline:watershed", "baseline:random_walker", "default")


def _save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


def _record(path: Path, payload: dict, name: str = "", run: dict | None = None,
            skip: str = "") -> dict:
    """Merge into the file and return its content: runs (and skip reasons) of the same protocol
    and the same settings for the sets both name stay (sets may be added); ``name`` gets
    ``run`` or the reason ``skip`` instead of what it had (another eval_dev.py may be writing
    other models to the same file: a lock file serialises them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs, skipped = [], {}
        if path.is_file():
            old = json.loads(path.read_text())
            old_sets = old.get("sets", {})
            if old.get("protocol") == payload["protocol"] and all(
                    old_sets[k] == payload["sets"][k] for k in old_sets.keys() & payload["sets"]):
                runs, skipped = old.get("runs", []), old.get("skipped", {})
        if run:  # sets evaluated before for this model (another --sets) are kept
            old_run = next((r for r in runs if r["model"] == name), None)
            if old_run is not None:
                kept = {k: v for k, v in old_run["datasets"].items() if k not in run["datasets"]}
                kept_commands = [c for c in old_run["commands"]
                                 if not any(f"/{k} " in c for k in run["datasets"])]
                run = {**run, "datasets": {**kept, **run["datasets"]},
                       "commands": kept_commands + run["commands"]}
        runs = [r for r in runs if r["model"] != name] + ([run] if run else [])
        skipped = {k: v for k, v in skipped.items() if k != name} | ({name: skip} if skip else {})
        merged = {**payload, "runs": runs, "skipped": skipped}
        _save(path, merged)
    return merged


def _readable(command: str) -> str:
    """The command with paths relative to the repository (as the README runs it)."""
    return command.replace(f"{REPO}/", "").replace(f"{REPO.parent}/", "../")


def _run_name(model: str, mode: str, flip: bool = True) -> str:
    if model.startswith("baseline:"):
        return model
    name = model if mode == "window" else f"{model} ({mode})"
    return name if flip else f"{name} (no flip)"


def evaluate_argv(model: str, mode: str, name: str, min_area: int, clicks: int,
                  flip: bool = True, subset: str = "val") -> list[str]:
    """The ``napari-ritm evaluate`` arguments for one set (without ``--json``)."""
    per_image, limit = SETS[name]
    no_flip = [] if flip or model.startswith("baseline:") else ["--no-flip"]
    return ["evaluate", "--model", model, "--mode", mode, *no_flip, "--data", str(set_dir(name)),
            "--split", str(SPLIT), "--subset", subset, "--max-objects-per-image", str(per_image),
            "--limit", str(limit), "--min-area", str(min_area), "--clicks", str(clicks)]


def markdown_table(results: dict) -> str:
    """Runs as rows, sets as columns; each cell "NoC@85 / NoC@90 (IoU after 1 click)"."""
    sets = [name for name in SETS if any(name in r["datasets"] for r in results["runs"])]
    counts = {name: next(r["datasets"][name]["objects"] for r in results["runs"]
                         if name in r["datasets"]) for name in sets}
    lines = ["| method | " + " | ".join(f"{n} ({counts[n]})" for n in sets) + " |",
             "|---|" + "---|" * len(sets)]
    for run in sorted(results["runs"], key=lambda r: r["model"]):
        cells = []
        for name in sets:
            d = run["datasets"].get(name)
            if d is None:
                cells.append("")
                continue
            iou1 = sum(s["ious"][0] for s in d["samples"]) / len(d["samples"])
            cells.append(f"{d['NoC@85']:.2f} / {d['NoC@90']:.2f} ({iou1:.2f})")
        lines.append(f"| {run['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-area", type=int, default=30, help="smallest object, pixels (30)")
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--modes", nargs="+", choices=("window", "exact", "fast"),
                        default=["window"], help="predictor modes for models (baselines have none)")
    parser.add_argument("--no-flip", action="store_true",
                        help="models without mirror averaging (runs named '<model> (no flip)')")
    parser.add_argument("--sets", nargs="+", choices=sorted(SETS), default=list(SETS),
                        help="dev sets to evaluate (default: all)")
    parser.add_argument("--subset", choices=("val", "val_select", "val_report"), default="val",
                        help="the split's val images, or one of their halves: val_select (to "
                        "choose on), val_report (to report; stardist_nuclei2d is report-only)")
    parser.add_argument("--out", type=Path, help="results file (default eval_dev.json for val, "
                        "eval_dev_<subset>.json for a half)")
    parser.add_argument("--markdown", action="store_true",
                        help="only print the results file as a markdown table (for docs/)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / ("eval_dev.json" if args.subset == "val"
                              else f"eval_dev_{args.subset}.json")
    if args.subset == "val_select":  # the one-image sets are report-only
        args.sets = [name for name in args.sets if name != "stardist_nuclei2d"]
    if args.markdown:
        print(markdown_table(json.loads(args.out.read_text())))
        return 0
    if not DATA.is_dir():
        print(f"dev sets not found at {DATA} (set NAPARI_RITM_SHARED)", file=sys.stderr)
        return 1

    payload = {
        "benchmark": "eval_dev",
        "protocol": {"max_clicks": args.clicks, "stop_iou": 0.90, "pred_thresh": 0.49,
                     "min_area": args.min_area,
                     "images": f"{args.subset} images of shared_split.json"},
        "sets": {name: {"max_objects_per_image": k, "limit": n} for name, (k, n) in SETS.items()},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
    }
    todo = sorted({(_run_name(m, mode, not args.no_flip), m, mode) for m in args.models
                   for mode in (["window"] if m.startswith("baseline:") else args.modes)})
    merged = _record(args.out, payload)
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, mode in todo:
            baseline = model.startswith("baseline:")
            run = {"model": name, "mode": None if baseline else mode,
                   "flip": None if baseline else not args.no_flip, "datasets": {}, "commands": []}
            for set_name in args.sets:
                report = Path(tmp) / f"{set_name}.json"
                cli_args = evaluate_argv(model, mode, set_name, args.min_area, args.clicks,
                                         not args.no_flip, args.subset)
                rc = cli([*cli_args, "--json", str(report)])
                if rc != 0:
                    merged = _record(args.out, payload, name, skip=f"evaluate exited with {rc}")
                    break
                run["commands"].append(_readable("napari-ritm " + " ".join(cli_args)))
                run["datasets"].update(json.loads(report.read_text())["datasets"])
            else:
                merged = _record(args.out, payload, name, run)
    shipped = [r for r in merged["runs"] if (r["model"], r["mode"]) == ("default", "window")]
    curves = {f"{run['model']} / {name}": [s["ious"] for s in d["samples"]]
              for run in shipped or merged["runs"] for name, d in run["datasets"].items()}
    if curves:
        plot_iou_curves(curves, args.out.with_suffix(".png"), max_clicks=args.clicks,
                        title="val images (stop at IoU 0.90; stopped objects keep their IoU)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
