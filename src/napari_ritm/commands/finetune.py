"""``napari-ritm finetune``: adapt a model to your own labelled images, as the widget's "Adapt
model to my labels" does (:func:`napari_ritm.training.adapt.adapt`): a short fine-tuning of a
copy, then a comparison on objects held back from it. The adapted model is written only when it
needs fewer clicks there (or with ``--keep-anyway``); then the threshold is fitted to the same
labels with it (as ``napari-ritm fit-threshold``) and kept in its card, where ``napari-ritm
predict`` and the widget find it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_ritm import commands
from napari_ritm.commands import UsageError, at_least_one, load_model_or_exit, read_data_folders


def register(subparsers: argparse._SubParsersAction) -> None:
    p = commands.add_command(subparsers, "finetune",
                             "adapt a model to your own labelled images", __doc__)
    commands.add_model_flag(p, "--init", help="the model to adapt: a registered name "
                            "(default: %(default)s) or a .pth checkpoint")
    commands.add_data_flag(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, metavar="CKPT",
                       help="write the adapted model here (.pth; its card goes next to it)")
    where.add_argument("--name", help="save it among your models under this name (default: "
                       "<init>-adapted), where the widget's Model box lists it")
    p.add_argument("--steps", type=at_least_one, default=300,
                   help="training steps (%(default)s)")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate (%(default)g)")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop training after this long, keeping what was learnt")
    p.add_argument("--held-out", type=float, default=0.25,
                   help="share of the objects held back for the comparison (%(default)s)")
    p.add_argument("--blend", type=float, default=0.3,
                   help="share of the fine-tuning's weight change kept (%(default)s): 1 fits "
                   "your images and your way of drawing outlines most, and keeps least of what "
                   "the model knew of other images")
    p.add_argument("--no-rehearsal", dest="rehearsal", action="store_false",
                   help="train on your images alone, without the few nuclei images shipped "
                   "with the plugin that otherwise fill half of each batch so that the model "
                   "keeps what it knew of other images")
    p.add_argument("--keep-anyway", action="store_true",
                   help="write the adapted model even when it is not better")
    commands.add_threads_flag(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from napari_ritm.training.adapt import AdaptOptions, adapt

    if not 0 < args.blend <= 1:
        raise UsageError(f"--blend must be in (0, 1], got {args.blend}")
    if not 0 < args.held_out < 1:
        raise UsageError(f"--held-out must be between 0 and 1, got {args.held_out}")
    if args.out is not None and args.out.suffix != ".pth":
        raise UsageError(f"--out must be a .pth file, got {args.out}")
    samples = read_data_folders(args.data)
    torch.set_num_threads(args.threads)
    net = load_model_or_exit(args.init, "--init")
    options = AdaptOptions(steps=args.steps, lr=args.lr, held_out=args.held_out, blend=args.blend,
                           rehearsal=args.rehearsal,
                           max_seconds=None if args.minutes is None else 60 * args.minutes)
    try:
        result = adapt(net, samples, options,
                       on_progress=lambda s, t, loss: print(f"step {s}/{t} loss {loss:.4f}",
                                                            flush=True) if s % 50 == 0 else None)
    except ValueError as err:
        raise UsageError(str(err)) from None
    b, a = result.before, result.after
    print(f"held-back objects: {result.held_objects}; NoC@85 {b['val_noc85']:.2f} -> "
          f"{a['val_noc85']:.2f}, NoC@90 {b['val_noc90']:.2f} -> {a['val_noc90']:.2f}, "
          f"IoU after 1 click {b['val_iou1']:.3f} -> {a['val_iou1']:.3f} ({result.steps} steps, "
          f"{result.seconds / 60:.1f} min)")
    if not (result.improved or args.keep_anyway):
        print("the adapted model is no better on the held-back objects: not written "
              "(--keep-anyway writes it)")
        return 0
    card = result.card(args.init)
    if args.out is not None:
        from napari_ritm.model.checkpoint import save_checkpoint

        save_checkpoint(result.net, args.out)
        args.out.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
        print(f"wrote {args.out}")
        saved: Path = args.out
    else:
        from napari_ritm.model.user_models import save_user_model, unique_name

        name = unique_name(args.name or f"{Path(args.init).stem}-adapted")
        saved = save_user_model(result.net, name, card)
        print(f"saved as your model {name!r}: {saved}")
    from napari_ritm.evaluation.threshold import fit_threshold
    from napari_ritm.inference.modes import make_predictor
    from napari_ritm.model.user_models import record_threshold

    predictor = make_predictor(result.net, "window")
    fit = fit_threshold(predictor, samples)
    try:
        record_threshold(saved, fit, {"mode": "window", "flip": bool(predictor.flip)})
    except OSError as err:
        raise UsageError(f"cannot write the threshold into the model card: {err}") from None
    print(f"fitted with the adapted model, {fit.summary()}; kept in its card")
    return 0
