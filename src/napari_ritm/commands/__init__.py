"""Subcommands of the ``napari-ritm`` command line.

Each public module here defines ``register(subparsers)``, which adds its parser and sets
``handler=<callable(args) -> int>`` with ``parser.set_defaults``. Handlers raise
:class:`UsageError` for bad input: the CLI prints its message and exits with code 2.
"""


class UsageError(Exception):
    """Bad input from the user (missing file, wrong shape, ...): reported without a traceback."""
