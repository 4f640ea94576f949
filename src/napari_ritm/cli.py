"""The ``napari-ritm`` command line.

Subcommands live in :mod:`napari_ritm.commands`, one module each; every module there exposes
``register(subparsers)`` and is found automatically, so adding a command touches no central list.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from napari_ritm import __version__, commands
from napari_ritm.commands import UsageError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :mod:`napari_ritm.commands` registered."""
    parser = argparse.ArgumentParser(
        prog="napari-ritm",
        description="Click-based interactive segmentation (RITM): predict, evaluate, train, "
                    "download.",
    )
    parser.add_argument("--version", action="version", version=f"napari-ritm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def join_option_values(argv: Sequence[str], options: tuple[str, ...] = ("-c", "--click")) -> list:
    """``-c -5,10,+`` as ``--click=-5,10,+``: argparse would take a value that starts with "-"
    for an option and fail with "expected one argument"."""
    out, args = [], list(argv)
    for i, token in enumerate(args):
        if i and args[i - 1] in options and token.startswith("-") and "," in token:
            out[-1] = f"--click={token}"
        else:
            out.append(token)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input, with a one-line message)."""
    parser = build_parser()
    try:  # argparse exits on bad flags (2, its message printed) and after --help (0)
        args = parser.parse_args(join_option_values(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except UsageError as err:
        print(f"napari-ritm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"napari-ritm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
