"""``napari-ritm train``: the RITM training recipe as a command.

It takes folders in the ``<set>/images`` + ``<set>/labels`` layout and starts from scratch (or
``--init``) with the recipe's Adam lr 5e-4 and 320x480 crops. Run it under ``torchrun
--nproc_per_node N`` to train with DDP. Adapting a model to your own labels, with a
comparison on held-back objects, is ``napari-ritm finetune``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from napari_ritm.commands import UsageError, load_model_or_exit
from napari_ritm.model.variants import ARCHITECTURES
from napari_ritm.training.options import OFFICIAL_MILESTONES


def register(subparsers) -> None:
    """Add the ``train`` subcommand."""
    p = subparsers.add_parser("train", help="train a RITM model on labelled image folders",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model",
        choices=sorted(ARCHITECTURES),
        default=None,
        help="architecture (default h18s, or that of --init)",
    )
    p.add_argument("--init", metavar="CKPT", help="start from this checkpoint or registered model")
    _add_common(p, steps=None, lr=5e-4, crop=(320, 480), batch=8, save_every=500, val_fraction=None)
    p.set_defaults(handler=run)



def _add_common(p, *, steps, lr, crop, batch, save_every, val_fraction) -> None:
    p.add_argument(
        "--data",
        action="append",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder with images/ and labels/ (repeat for several sets)",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="CKPT",
        help="output checkpoint (.pth, official format); metrics and trainer state go next to it",
    )
    length = p.add_mutually_exclusive_group(required=steps is None)
    length.add_argument(
        "--steps", type=int, default=steps, help=f"optimizer steps (default {steps})"
    )
    length.add_argument("--epochs", type=int, help="epochs of --epoch-len samples")
    p.add_argument(
        "--epoch-len",
        type=int,
        metavar="N",
        help="samples per epoch (default: number of training images, at least one batch)",
    )
    p.add_argument(
        "--batch-size", type=int, default=batch, help=f"global batch size (default {batch})"
    )
    p.add_argument(
        "--crop",
        type=int,
        nargs=2,
        default=list(crop),
        metavar=("H", "W"),
        help=f"training crop (default {crop[0]} {crop[1]})",
    )
    p.add_argument(
        "--scale-range",
        type=float,
        nargs=2,
        default=[0.75, 1.40],
        metavar=("LOW", "HIGH"),
        help="random resize factors of the images (default 0.75 1.40, the RITM recipe; "
        "zoom-in shows small objects up to 2x larger at prediction time)",
    )
    p.add_argument(
        "--lr", type=float, default=lr, help=f"Adam learning rate of the head (default {lr:g})"
    )
    p.add_argument(
        "--backbone-lr-mult", type=float, default=0.1, help="backbone lr factor (default 0.1)"
    )
    p.add_argument(
        "--lr-decay-at",
        type=float,
        nargs="*",
        default=list(OFFICIAL_MILESTONES),
        metavar="FRACTION",
        help="fractions of the run's steps where the lr is multiplied by 0.1 (default "
        "200/230 and 220/230 = 0.870 0.957, the official schedule's epochs; given with no "
        "fraction: a constant lr, e.g. for a probe that a longer --resume continues)",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default=None,
        help="default: cuda when available, else cpu",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads per process")
    p.add_argument("--workers", type=int, default=0, help="data loader processes (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--save-every",
        type=int,
        default=save_every,
        metavar="STEPS",
        help=f"checkpoint interval in steps (default {save_every}; 0: only at the end)",
    )
    p.add_argument(
        "--keep-every",
        type=int,
        default=0,
        metavar="STEPS",
        help="also keep a copy of the checkpoint every STEPS steps as <out>.step<N>.pth, to "
        "average the last ones afterwards with 'napari-ritm average' (default 0: none)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the trainer state next to --out"
    )
    p.add_argument(
        "--val-split",
        type=Path,
        metavar="FILE",
        help="JSON split file; created from --val-fraction when it does not exist",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=val_fraction,
        help="validation fraction of the images of each set (0.2 with a new --val-split)",
    )
    p.add_argument(
        "--val-every", type=int, default=1, metavar="EPOCHS", help="validate every N epochs"
    )
    p.add_argument("--val-objects", type=int, default=8, help="validation objects for NoC (0: off)")
    p.add_argument(
        "--val-max-clicks", type=int, default=20, help="clicks per validation object (20)"
    )
    p.add_argument("--val-samples", type=int, default=32, help="validation crops for the loss")
    p.add_argument(
        "--max-next-clicks", type=int, default=3, help="iterative clicks per batch, 0..N (3)"
    )
    p.add_argument(
        "--min-object-area", type=int, default=20, help="ignore objects smaller in a crop (20)"
    )
    p.add_argument("--balance-sets", action="store_true", help="draw each set equally often")
    p.add_argument("--set-weight", action="append", default=[], metavar="NAME=W",
                   help="with --balance-sets: draw set NAME W times as often as the others "
                   "(repeat for more sets)")
    p.add_argument(
        "--object-crops",
        action="store_true",
        help="crop around one object at a scale the window predictor would show it "
        "(replaces --scale-range)",
    )
    p.add_argument(
        "--cut-prob",
        type=float,
        default=0.25,
        help="with --object-crops: share of first-click views of objects larger than the first "
        "window that show the object cut by a smaller window, as before a growth step (0.25)",
    )
    p.add_argument(
        "--cut-levels",
        type=int,
        default=1,
        help="with --object-crops: how many window sizes below the one that holds the object "
        "a cut first-click view may use; more teaches the mask to fill a first window that "
        "lies inside a large object, so the window grows (1: only the one before)",
    )
    p.add_argument(
        "--single-click-prob",
        type=float,
        default=0.0,
        help="share of samples with exactly one positive click, as a first click (0)",
    )
    p.add_argument(
        "--noise-prob",
        type=float,
        default=0.0,
        help="share of samples given photon (Poisson) noise, as in low-count fluorescence (0)",
    )
    for flag, what in (
        ("--invert-prob", "shown with inverted contrast (dark objects on a bright field)"),
        ("--blur-prob", "blurred by a Gaussian of 0.5-1.5 px"),
        ("--read-noise-prob", "given Gaussian camera noise (standard deviation 1-5 %%)"),
        ("--refine-prob", ("whose previous mask is an automatic tool's mask of the object with "
                           "its errors, and one click to correct it (needs --object-crops)")),
        ("--propagate-prob", ("whose previous mask is the object on the neighbouring slice (of "
                              "a 3D label stack, else made from this slice), with no click "
                              "(needs --object-crops)")),
    ):
        p.add_argument(flag, type=float, default=0.0, help=f"share of samples {what} (0)")
    p.add_argument(
        "--tighten-prob",
        type=float,
        default=0.0,
        help="share of samples whose object outlines lose their outermost pixel, as if drawn "
        "a pixel tighter (0)",
    )
    p.add_argument(
        "--tighten-set",
        action="append",
        metavar="NAME",
        help="only samples of this set (folder name) get --tighten-prob; repeat for more "
        "(default: every set)",
    )
    p.add_argument(
        "--val-mode",
        choices=("window", "exact", "fast"),
        default="window",
        help="predictor mode of the validation NoC (window)",
    )
    p.add_argument("--no-amp", action="store_true",
                   help="train in float32 (default: bfloat16 autocast on GPUs and on CPUs with "
                   "native bfloat16)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _load_images(dirs: list[Path]):
    from napari_ritm.training.data import read_folder

    samples, seen = [], set()
    for d in dirs:
        if not d.is_dir():
            raise UsageError(f"--data {d}: not a folder")
        try:
            found = read_folder(d)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if found[0].set_name in seen:
            raise UsageError(
                f"two --data folders are named {found[0].set_name!r}; set names must differ"
            )
        seen.add(found[0].set_name)
        samples.extend(found)
    return samples


def _split(args, samples, rank: int):
    from napari_ritm.training.data import apply_split, load_split, make_split, save_split

    if args.val_fraction is not None and not 0 <= args.val_fraction < 1:
        raise UsageError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.val_split is not None and args.val_split.exists():
        try:
            split = load_split(args.val_split)
        except ValueError as err:
            raise UsageError(str(err)) from None
    elif args.val_split is not None or args.val_fraction is not None:
        fraction = 0.2 if args.val_fraction is None else args.val_fraction
        split = make_split(samples, fraction, seed=args.seed)
        path = args.val_split or args.out.with_name(args.out.stem + ".split.json")
        if rank == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_split(split, path)
            print(f"wrote split file {path}")
    else:
        return samples, []
    train, val, unlisted = apply_split(samples, split)
    if unlisted and rank == 0:
        print(
            f"note: {len(unlisted)} images not in the split file are trained on, e.g. {unlisted[0]}"
        )
    return train, val


def _build_net(args):
    import torch

    if args.init:
        net = load_model_or_exit(args.init, "--init")
        if args.model is not None and net.variant.architecture != args.model:
            raise UsageError(f"--init {args.init} is not a {args.model} model "
                             f"({net.variant.name})")
        return net.float().train()
    from napari_ritm.model.ritm_net import RITMNet, RITMVariant
    from napari_ritm.training.optim import init_weights

    torch.manual_seed(args.seed)
    return init_weights(RITMNet.from_variant(RITMVariant.named(args.model or "h18s")))


def run(args) -> int:
    """Handler of ``napari-ritm train``."""
    import torch

    from napari_ritm.training.options import (
        TrainOptions,
        resolve_epoch_len,
        state_path,
        steps_per_epoch,
    )
    from napari_ritm.training.trainer import train

    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    for name in (
        "batch_size",
        "steps",
        "epochs",
        "epoch_len",
        "threads",
        "val_every",
        "val_max_clicks",
        "cut_levels",
    ):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not 0 < args.scale_range[0] <= args.scale_range[1]:
        raise UsageError(f"--scale-range needs 0 < LOW <= HIGH, got {args.scale_range}")
    for name in ("noise_prob", "tighten_prob", "cut_prob", "invert_prob", "blur_prob",
                 "read_noise_prob", "refine_prob", "propagate_prob"):
        if not 0 <= getattr(args, name) <= 1:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be between 0 and 1, got {getattr(args, name)}")
    set_weights = []
    for entry in args.set_weight:
        name, _, weight = entry.partition("=")
        try:
            set_weights.append((name, float(weight)))
        except ValueError:
            raise UsageError(f"--set-weight {entry}: expected NAME=WEIGHT") from None
        if set_weights[-1][1] < 0:
            raise UsageError(f"--set-weight {entry}: the weight must be >= 0")
    if args.refine_prob + args.propagate_prob > 1:
        raise UsageError("--refine-prob and --propagate-prob add up to more than 1")
    if (args.refine_prob or args.propagate_prob) and not args.object_crops:
        raise UsageError("--refine-prob and --propagate-prob need --object-crops")
    if not all(0 < f <= 1 for f in args.lr_decay_at):
        raise UsageError(f"--lr-decay-at: fractions of the run in (0, 1], got {args.lr_decay_at}")
    if min(args.crop) < 32:
        raise UsageError(f"--crop must be at least 32 x 32, got {args.crop[0]} x {args.crop[1]}")
    if args.batch_size % world or args.batch_size // world < 2:
        raise UsageError(
            f"--batch-size {args.batch_size} must be a multiple of {world} process(es) with at "
            "least 2 images each (BatchNorm needs 2 in training mode)"
        )
    if args.resume and not state_path(args.out).exists():
        raise UsageError(f"--resume: no trainer state {state_path(args.out)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    train_samples, val_samples = _split(args, _load_images(args.data), rank)
    if not train_samples:
        raise UsageError("no training images left after the validation split")
    known = {s.set_name for s in train_samples}
    for flag, names in (("--tighten-set", args.tighten_set or ()),
                        ("--set-weight", [name for name, _ in set_weights])):
        unknown = sorted(set(names) - known)
        if unknown:
            raise UsageError(f"{flag} {', '.join(unknown)}: no such training set "
                             f"(the sets are {', '.join(sorted(known))})")
    epoch_len = resolve_epoch_len(args.epoch_len, len(train_samples), args.batch_size)
    steps = args.steps or args.epochs * steps_per_epoch(epoch_len, args.batch_size, world)
    net = _build_net(args)
    same = ("batch_size", "lr", "backbone_lr_mult", "min_object_area", "balance_sets",
            "object_crops", "cut_prob", "cut_levels", "single_click_prob", "noise_prob",
            "invert_prob", "blur_prob", "read_noise_prob", "refine_prob", "propagate_prob",
            "tighten_prob", "val_mode", "seed", "save_every", "keep_every", "val_every",
            "val_samples", "val_objects", "val_max_clicks", "workers", "resume")
    options = TrainOptions(
        out=args.out, steps=steps, crop_size=tuple(args.crop),
        scale_range=tuple(args.scale_range), epoch_len=epoch_len,
        max_num_next_clicks=args.max_next_clicks, device=device, amp=not args.no_amp,
        progress=not args.no_progress,
        tighten_sets=tuple(args.tighten_set) if args.tighten_set else None,
        milestones=tuple(args.lr_decay_at), set_weights=tuple(set_weights),
        **{name: getattr(args, name) for name in same},
    )
    if rank == 0:
        print(
            f"training {net.variant} on {len(train_samples)} "
            f"images ({len(val_samples)} for validation): {steps} steps of {args.batch_size}, "
            f"device {device}, "
            f"{world} process(es)"
        )
    summary = train(net, train_samples, val_samples, options)
    if rank == 0:
        print(json.dumps(summary))
    return 0
