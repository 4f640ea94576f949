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
from dataclasses import replace
from pathlib import Path

from napari_ritm import commands
from napari_ritm.commands import UsageError, at_least_one, load_model_or_exit
from napari_ritm.model.variants import ARCHITECTURES


def register(subparsers) -> None:
    """Add the ``train`` subcommand."""
    p = commands.add_command(subparsers, "train",
                             "train a RITM model on labelled image folders", __doc__)
    p.add_argument(
        "--model",
        choices=sorted(ARCHITECTURES),
        default=None,
        help="architecture (default h18s, or that of --init)",
    )
    p.add_argument("--init", metavar="CKPT", help="start from this checkpoint or registered model")
    commands.add_data_flag(p)
    p.add_argument("--out", required=True, type=Path, metavar="CKPT",
                   help="output checkpoint (.pth, official format); metrics and trainer state "
                   "go next to it")
    length = p.add_mutually_exclusive_group(required=True)
    length.add_argument("--epochs", type=at_least_one, help="epochs of --epoch-len samples")
    add_option_flags(p, steps_group=length)
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="default: cuda when available, else cpu")
    commands.add_threads_flag(p, default=None, help="torch CPU threads per process")
    p.add_argument("--val-split", type=Path, metavar="FILE",
                   help="JSON split file; created from --val-fraction when it does not exist")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="validation fraction of the images of each set (0.2 with a new "
                   "--val-split)")
    p.set_defaults(handler=run)


def add_option_flags(parser: argparse.ArgumentParser, *, steps_group=None) -> None:
    """One flag per :class:`~napari_ritm.training.options.TrainOptions` field that has one, its
    help, default, type and metavar read from the field (``steps`` into ``steps_group``)."""
    from dataclasses import fields

    from napari_ritm.training.options import TrainOptions, flag_of

    for f in fields(TrainOptions):
        flag, meta = flag_of(f), f.metadata
        if not flag or f.name == "out":
            continue
        target = steps_group if f.name == "steps" and steps_group is not None else parser
        shown = None if f.name == "milestones" else f.default  # its help says it
        kwargs = {"dest": f.name, "help": _help(meta["help"], shown)}
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
        if meta.get("choices"):
            kwargs["choices"] = meta["choices"]
        default = f.default
        if isinstance(default, bool):
            kwargs["action"] = "store_false" if default else "store_true"
        elif f.name in ("set_weights", "tighten_sets"):
            kwargs.update(action="append", default=None)
        elif f.name == "milestones":
            kwargs.update(nargs="*", type=float, default=list(default))
        elif isinstance(default, tuple):
            kwargs.update(nargs=len(default), type=type(default[0]), default=list(default))
        else:
            kwargs.update(type=int if f.type in ("int", "int | None") else type(default)
                          if default is not None else int, default=default)
        target.add_argument(flag, **kwargs)


def _help(text: str, default) -> str:
    if isinstance(default, bool) or default in (None, ()):
        return text
    if isinstance(default, tuple):
        shown = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
        return f"{text} (default {shown})"
    return f"{text} (default {default:g})" if isinstance(default, float) else (
        f"{text} (default {default})")


def options_from_args(args: argparse.Namespace, **computed):
    """The :class:`~napari_ritm.training.options.TrainOptions` the flags in ``args`` ask for
    (``computed``: fields the command works out itself); its check errors as UsageError."""
    from dataclasses import fields

    from napari_ritm.training.options import TrainOptions, flag_of

    values = {}
    for f in fields(TrainOptions):
        if f.name in computed or not flag_of(f) or f.name == "out":
            continue
        value = getattr(args, f.name)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    values["tighten_sets"] = values["tighten_sets"] or None
    weights = []
    for entry in values["set_weights"] or ():
        name, _, weight = entry.partition("=")
        try:
            weights.append((name, float(weight)))
        except ValueError:
            raise UsageError(f"--set-weight {entry}: expected NAME=WEIGHT") from None
    values["set_weights"] = tuple(weights)
    try:
        return TrainOptions(out=args.out, **values, **computed)
    except ValueError as error:
        raise UsageError(str(error)) from None


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

    from napari_ritm.training.options import resolve_epoch_len, state_path, steps_per_epoch
    from napari_ritm.training.trainer import train

    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    checked = options_from_args(args, device=device,
                                steps=1 if args.steps is None else args.steps)
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
    for flag, names in (("--tighten-set", checked.tighten_sets or ()),
                        ("--set-weight", [name for name, _ in checked.set_weights])):
        unknown = sorted(set(names) - known)
        if unknown:
            raise UsageError(f"{flag} {', '.join(unknown)}: no such training set "
                             f"(the sets are {', '.join(sorted(known))})")
    epoch_len = resolve_epoch_len(args.epoch_len, len(train_samples), args.batch_size)
    steps = args.steps or args.epochs * steps_per_epoch(epoch_len, args.batch_size, world)
    options = replace(checked, steps=steps, epoch_len=epoch_len)
    net = _build_net(args)
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
