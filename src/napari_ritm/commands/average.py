"""``napari-ritm average CKPT CKPT ... --out OUT.pth``: one model from several checkpoints.

The weights of checkpoints of one training run (e.g. the last few saved at a constant learning
rate) are averaged into one official-format checkpoint, which is usually better than each of
them (stochastic weight averaging). The checkpoints must share an architecture.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from napari_ritm.commands import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``average`` subcommand."""
    parser = subparsers.add_parser(
        "average", help="average the weights of checkpoints of one training run",
        description=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("checkpoints", nargs="+", type=Path, metavar="CKPT",
                        help="official-format .pth files of one architecture")
    parser.add_argument("--out", required=True, type=Path, metavar="OUT.pth",
                        help="where to write the averaged checkpoint")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.checkpoints if not p.is_file()]
    if missing:
        raise UsageError(f"no such checkpoint: {', '.join(missing)}")
    if args.out.resolve() in {p.resolve() for p in args.checkpoints}:
        raise UsageError(f"--out {args.out} is one of the inputs; write the average elsewhere")
    if not args.out.parent.exists():
        raise UsageError(f"the folder {args.out.parent} does not exist")
    from napari_ritm.model.checkpoint import save_checkpoint
    from napari_ritm.training.averaging import average_checkpoints

    try:
        net = average_checkpoints(args.checkpoints)
    except (OSError, ValueError, RuntimeError) as err:
        raise UsageError(str(err)) from None
    save_checkpoint(net, args.out)
    print(f"{len(args.checkpoints)} checkpoint(s) of {net.variant.name} averaged -> {args.out}")
    return 0
