"""``napari-ritm fit-threshold``: the probability threshold that matches your outlines, as the
widget's "Fit threshold to my labels" finds it (:func:`napari_ritm.evaluation.threshold.
fit_threshold`): one click on each labelled object (at its innermost pixel), and the threshold
whose masks have the highest mean IoU with your labels (0.49 stays unless another raises that
mean by 0.01 or more). Use it with ``napari-ritm predict --threshold`` / ``evaluate
--threshold`` or the widget's Threshold slider, or keep it in the card of your own model with
``--save`` (``predict`` and the widget then use it with that model; for ``default`` and the
other registered models it is kept in your model folder, for as long as the model's file stays
the same).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_ritm import commands
from napari_ritm.commands import UsageError, at_least_one, load_model_or_exit, read_data_folders


def register(subparsers: argparse._SubParsersAction) -> None:
    p = commands.add_command(subparsers, "fit-threshold",
                             "the threshold that matches your outlines", __doc__)
    commands.add_model_flag(p)
    commands.add_data_flag(p)
    commands.add_predictor_flags(p)
    commands.add_threads_flag(p)
    p.add_argument("--max-objects", type=at_least_one, default=100, metavar="N",
                   help="at most N objects, spread evenly over all (%(default)s)")
    commands.add_min_area_flag(p, default=30)
    p.add_argument("--json", type=Path, metavar="OUT",
                   help="write the fit and the mean IoU at every threshold tried")
    p.add_argument("--save", action="store_true", help="keep the threshold in the model's card "
                   "(registered and your own models; a .pth with a .json card beside it)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from napari_ritm.evaluation.threshold import fit_threshold
    from napari_ritm.inference.modes import make_predictor

    if args.save:
        from napari_ritm.model.user_models import can_record_threshold

        if not can_record_threshold(args.model):
            raise UsageError(f"--save: {args.model} has no model card to keep the threshold in "
                             "(registered models, your own models and the .pth files "
                             "finetune --out writes have one)")
    samples = read_data_folders(args.data)
    torch.set_num_threads(args.threads)
    net = load_model_or_exit(args.model, "--model")
    overrides = {"flip": False} if args.no_flip else {}
    predictor = make_predictor(net, args.mode, **overrides)
    try:
        fit = fit_threshold(predictor, samples, min_area=args.min_area,
                            max_objects=args.max_objects)
    except ValueError as err:
        raise UsageError(f"--data: {err}") from None
    for threshold, iou in fit.table.items():
        mark = "  <- chosen" if threshold == fit.threshold else ""
        print(f"threshold {threshold:.2f}: mean IoU after one click {iou:.3f}{mark}")
    print(fit.summary())
    if args.save:
        from napari_ritm.model.user_models import record_threshold

        try:
            how = {"mode": args.mode, "flip": bool(predictor.flip)}
            digest = getattr(predictor, "info", {}).get("sha256")  # of the file fitted with
            print(f"kept in {record_threshold(args.model, fit, how, digest)}")
        except OSError as err:
            raise UsageError(f"--save: cannot write the model card: {err}") from None
    if args.json:
        report = {"model": args.model, "mode": args.mode, "flip": bool(predictor.flip),
                  "threshold": fit.threshold, "iou": fit.iou, "default": fit.current,
                  "iou_default": fit.iou_current, "objects": fit.objects,
                  "table": {f"{t:.2f}": v for t, v in fit.table.items()}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0
