"""``napari-ritm evaluate``: NoC of a model (or a classic baseline) on instance-label datasets."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from napari_ritm import commands
from napari_ritm.commands import UsageError, at_least_one, load_model_or_exit
from napari_ritm.inference.clicks import DEFAULT_THRESHOLD

DESCRIPTION = """\
Simulate a user clicking each object of each dataset (RITM's NoC protocol: next click at the
centre of the largest error, up to --clicks clicks, stop at IoU 0.90, prediction = prob > 0.49)
and report NoC@85/90 (mean clicks to reach that IoU), NoF@90 (objects never reaching it) and
seconds per click. A dataset folder holds images/<name>.<png|jpg|tif> and labels/<name>.tif
(uint16 instance ids); every instance is one object, 3D stacks give one object per slice.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    p = commands.add_command(
        subparsers, "evaluate", "NoC evaluation of a model or baseline on labelled images",
        DESCRIPTION,
    )
    p.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                   help="registered model name, checkpoint path, or baseline:random_walker / "
                        "baseline:watershed")
    commands.add_data_flag(p, help="dataset folder (repeat for several); its name labels the "
                           "results")
    p.add_argument("--clicks", type=at_least_one, default=20,
                   help="maximum clicks per object (20)")
    p.add_argument("--all-clicks", action="store_true",
                   help="do not stop at IoU 0.90: run every click (for IoU-vs-clicks curves)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write per-object IoUs and metrics")
    p.add_argument("--plot", type=Path, metavar="OUT.png", help="write an IoU-vs-clicks plot")
    commands.add_predictor_flags(p)
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="probability above which a pixel is object (%(default)s, the paper's "
                        "protocol; `napari-ritm fit-threshold` finds the one for your labels)")
    commands.add_threads_flag(p, help="torch CPU threads (1: fastest when anything else is "
                              "running)")
    p.add_argument("--max-objects-per-image", type=at_least_one, metavar="K",
                   help="at most K objects per image file, spread evenly over the ids")
    commands.add_min_area_flag(p, default=1)
    p.add_argument("--limit", type=at_least_one, metavar="N",
                   help="at most N objects per dataset")
    p.add_argument("--split", type=Path, metavar="FILE",
                   help="split file of `napari-ritm train` (e.g. recipes/"
                        "shared_split.json): evaluate only the images it lists for each set")
    p.add_argument("--init-masks", action="append", type=Path, metavar="DIR",
                   help="refine instead of starting from scratch: DIR holds <image name>.tif, "
                   "the labels an automatic tool gave that image (0 = background); each object "
                   "starts from the label that overlaps it most (objects no label touches are "
                   "left out). One DIR per --data, in the same order")
    p.add_argument("--subset", choices=("val", "val_select", "val_report", "train"),
                   default="val",
                   help="which images of --split to evaluate: val (default), its halves "
                   "val_select (to choose on) and val_report (to report), or train")
    p.set_defaults(handler=run)


def split_names(split_file: Path | None, subset: str, folders: list[Path]) -> list:
    """Per ``--data`` folder, the image names ``subset`` of the split file lists (None without a
    split file). Raises UsageError for an unreadable file or a set it does not mention."""
    if split_file is None:
        return [None] * len(folders)
    from napari_ritm.training.data import load_split

    try:
        sets = load_split(split_file)["sets"]
    except ValueError as err:
        raise UsageError(str(err)) from err
    names = []
    for folder in folders:
        name = folder.resolve().name
        if name not in sets:
            raise UsageError(f"{split_file} has no set named {name!r} (it has {', '.join(sets)})")
        names.append(set(sets[name].get(subset, ())))
    return names


def make_predictor(model: str, mode: str = "window", flip: bool = True):
    """A click predictor for ``model``: ``baseline:<name>`` or a model name/path for ``load_model``
    in the predictor of ``mode`` (:func:`napari_ritm.inference.modes.make_predictor`), without
    mirror averaging if not ``flip``. Raises UsageError."""
    if model.startswith("baseline:"):
        if not flip:
            raise UsageError("--no-flip applies to models, not to baselines")
        from napari_ritm.evaluation.baselines import BASELINES

        name = model.split(":", 1)[1]
        if name not in BASELINES:
            raise UsageError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
        return BASELINES[name]()
    from napari_ritm.inference import modes

    return modes.make_predictor(load_model_or_exit(model), mode,
                                **({} if flip else {"flip": False}))


def _check_args(args: argparse.Namespace) -> None:
    if not 0 < args.threshold < 1:
        raise UsageError(f"--threshold must be between 0 and 1, got {args.threshold}")
    names = [d.resolve().name for d in args.data]
    if len(set(names)) != len(names):
        raise UsageError(f"two --data folders share a name: {names}")
    if args.init_masks is not None:
        if len(args.init_masks) != len(args.data):
            raise UsageError(f"give one --init-masks per --data ({len(args.data)}), got "
                             f"{len(args.init_masks)}")
        for folder in args.init_masks:
            if not folder.is_dir():
                raise UsageError(f"--init-masks {folder}: not a folder")
        if args.model.startswith("baseline:"):
            raise UsageError("--init-masks needs a model: the baselines cannot refine a mask")
    for out in (args.json, args.plot):
        if out is not None and out.exists() and out.is_dir():
            raise UsageError(f"{out} is a folder, expected a file name")


class InitialMasks:
    """The initial mask of each sample from a folder of automatic labels (``<image>.tif``; a
    stack's labels give its slices): the label that overlaps the object most, None when none
    does. Raises UsageError for a missing or mismatching file."""

    def __init__(self, folder: Path) -> None:
        self.folder, self._cache = folder, {}

    def __call__(self, sample):
        import numpy as np

        from napari_ritm.evaluation.folders import read_array

        stem = Path(sample.image_name).stem
        if stem not in self._cache:
            path = self.folder / f"{stem}.tif"
            if not path.is_file():
                raise UsageError(f"--init-masks: no {path} for image {sample.image_name}")
            self._cache = {stem: np.asarray(read_array(path))}
        labels = self._cache[stem]
        labels = labels[sample.slice] if sample.slice is not None else labels
        if labels.shape != sample.gt.shape:
            raise UsageError(f"--init-masks: {stem}.tif has shape {labels.shape}, the image "
                             f"{sample.gt.shape}")
        under = labels[sample.gt == 1]
        under = under[under > 0]
        if under.size == 0:
            return None
        return labels == np.bincount(under).argmax()


def format_table(report: dict) -> str:
    """The results table: dataset, #objects, NoC@85, NoC@90, NoF@90, s/click."""
    mode = f" ({report['mode']} mode)" if report.get("mode") else ""
    lines = [f"model: {report['model']}{mode}",
             f"{'dataset':<22}{'objects':>8}{'NoC@85':>8}{'NoC@90':>8}{'NoF@90':>8}{'s/click':>9}"]
    for name, d in report["datasets"].items():
        lines.append(f"{name:<22}{d['objects']:>8}{d['NoC@85']:>8.2f}{d['NoC@90']:>8.2f}"
                     f"{d['NoF@90']:>8}{d['s_per_click']:>9.3f}")
    return "\n".join(lines)


def write_json(report: dict, path: Path) -> None:
    """Write the report atomically (a partial run never leaves a half-written file)."""
    from napari_ritm.model.files import atomic_write

    text = json.dumps(report, indent=1, allow_nan=False)
    atomic_write(path, lambda tmp: tmp.write_text(text))


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, write JSON/plot; returns 130 after Ctrl-C (partial results
    kept)."""
    from tqdm import tqdm

    from napari_ritm.evaluation.datasets import InstanceDataset
    from napari_ritm.evaluation.folders import DatasetError
    from napari_ritm.evaluation.noc import DatasetResult, evaluate_dataset

    _check_args(args)
    datasets = []
    for folder, names in zip(args.data, split_names(args.split, args.subset, args.data)):
        try:
            ds = InstanceDataset(folder, max_objects_per_image=args.max_objects_per_image,
                                 min_area=args.min_area, limit=args.limit, names=names)
        except (OSError, DatasetError) as err:
            raise UsageError(f"--data {err}") from err
        if not len(ds):
            where = f" among the {args.subset} images of {args.split}" if args.split else ""
            raise UsageError(f"{folder}: no object with at least {args.min_area} pixels{where}")
        datasets.append(ds)
    import torch

    torch.set_num_threads(args.threads)
    predictor = make_predictor(args.model, args.mode, flip=not args.no_flip)

    results: list[DatasetResult] = []
    interrupted, bad_file = False, None
    try:
        for ds in datasets:
            result = DatasetResult(ds.name, max_clicks=args.clicks)
            results.append(result)
            init_for = None
            if args.init_masks is not None:
                init_for = InitialMasks(args.init_masks[datasets.index(ds)])
            with tqdm(total=len(ds), desc=ds.name, unit="obj", file=sys.stderr) as bar:
                evaluate_dataset(predictor, ds, result, pred_thresh=args.threshold,
                                 stop_iou=None if args.all_clicks else 0.90,
                                 on_sample=lambda sample, out: bar.update(),
                                 init_for=init_for)
            if args.json:
                write_json(_report(args, results, predictor), args.json)
    except KeyboardInterrupt:
        interrupted = True
    except DatasetError as err:
        bad_file = err
    report = _report(args, results, predictor)
    if args.json:
        write_json(report, args.json)
    if bad_file is not None:
        kept = f" (results so far in {args.json})" if args.json and report["datasets"] else ""
        raise UsageError(f"{bad_file}{kept}")
    print(format_table(report))
    if args.plot and report["datasets"]:
        from napari_ritm.evaluation.plots import plot_iou_curves

        curves = {n: [s["ious"] for s in d["samples"]] for n, d in report["datasets"].items()}
        plot_iou_curves(curves, args.plot, max_clicks=args.clicks, title=args.model)
    if interrupted:
        where = f"; partial results in {args.json}" if args.json else ""
        print(f"napari-ritm evaluate: interrupted{where}", file=sys.stderr)
        return 130
    return 0


def _report(args: argparse.Namespace, results: list, predictor) -> dict:
    baseline = args.model.startswith("baseline:")
    return {"model": args.model, "mode": None if baseline else args.mode,
            "flip": None if baseline else bool(predictor.flip), "threshold": args.threshold,
            "init_masks": None if args.init_masks is None else [str(p) for p in args.init_masks],
            "datasets": {r.name: r.to_json() for r in results if r.samples}}
