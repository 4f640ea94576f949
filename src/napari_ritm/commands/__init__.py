"""Subcommands of the ``napari-ritm`` command line.

Each public module here defines ``register(subparsers)``, which adds its parser and sets
``handler=<callable(args) -> int>`` with ``parser.set_defaults``. Handlers raise
:class:`UsageError` for bad input: the CLI prints its message and exits with code 2.
"""


import argparse
from pathlib import Path


class UsageError(Exception):
    """Bad input from the user (missing file, wrong shape, ...): reported without a traceback."""


def load_model_or_exit(source: str, option: str = "--model"):
    """``load_model(source)``, with any failure to load it turned into a :class:`UsageError`
    whose one or two lines say what went wrong and what to do (``option``: the flag that named
    the model, shown first)."""
    from napari_ritm.model.zoo import describe_load_error, load_model

    try:
        return load_model(source)
    except (OSError, KeyError, ValueError, RuntimeError) as err:
        raise UsageError(f"{option} {source}: {describe_load_error(source, err)}") from None


def read_data_folders(folders) -> list:
    """The labelled images of every ``--data`` folder (``training.data.read_folder``), with a
    folder that does not follow the layout turned into a :class:`UsageError`."""
    from napari_ritm.training.data import read_folder

    samples = []
    for folder in folders:
        try:
            samples += read_folder(folder)
        except ValueError as err:
            raise UsageError(f"--data {err}") from None
    return samples


def at_least_one(text: str) -> int:
    """argparse ``type`` of counts (``--threads``, ``--steps``...): an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_threads_flag(parser: argparse.ArgumentParser, default: int | None = 1,
                     help: str = "torch CPU threads (%(default)s)") -> None:
    """The ``--threads`` flag every command that runs the network has."""
    parser.add_argument("--threads", type=at_least_one, default=default, help=help)


def add_command(subparsers: argparse._SubParsersAction, name: str, help: str,
                description: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``; ``description`` (its module's docstring, say) is
    shown as written."""
    return subparsers.add_parser(name, help=help, description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def add_model_flag(parser: argparse.ArgumentParser, flag: str = "--model",
                   help: str = "the model: a registered name (default: %(default)s) or a "
                   ".pth checkpoint") -> None:
    """The flag naming the model a command runs, "default" unless given."""
    parser.add_argument(flag, default="default", metavar="NAME_OR_PATH", help=help)


def add_data_flag(parser: argparse.ArgumentParser,
                  help: str = "folder with images/ and labels/ (repeat for several)") -> None:
    """The ``--data DIR`` flag (repeatable, required) of the commands that read labelled sets."""
    parser.add_argument("--data", action="append", required=True, type=Path, metavar="DIR",
                        help=help)


def add_min_area_flag(parser: argparse.ArgumentParser, default: int) -> None:
    """``--min-area A``: the commands that go through labelled objects skip smaller ones."""
    parser.add_argument("--min-area", type=at_least_one, default=default, metavar="A",
                        help="skip objects smaller than A pixels (%(default)s)")


def add_predictor_flags(parser: argparse.ArgumentParser) -> None:
    """``--mode`` and ``--no-flip``: how the commands that click predict, as in the widget."""
    parser.add_argument("--mode", choices=("window", "exact", "fast"), default="window",
                        help="window (default, as the widget): the first click in a window "
                        "around it, later clicks zoomed in, same cost on any image size, mirror "
                        "averaging; exact: the paper's predictor (zoom-in 400 px, flip); fast: "
                        "exact with a smaller zoom-in, no flip")
    parser.add_argument("--no-flip", action="store_true",
                        help="window and exact modes: without the mirror (horizontal-flip) "
                        "averaging, about 2x faster per click and a little less accurate (as "
                        "the widget's box unticked)")
