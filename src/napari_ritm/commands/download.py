"""``napari-ritm download``: fetch registered models into the per-user cache, or list them.

``napari-ritm download NAME [NAME ...]`` downloads (with a progress bar) what is not cached yet and
prints each file's path; ``--list`` prints every registered model with its size, whether it is
available locally, and its path. Failures (unknown name, no network, corrupt file) exit with 2.
"""
from __future__ import annotations

import argparse

from napari_ritm.commands import UsageError
from napari_ritm.model import zoo


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download models into the cache (or --list them)",
        description="Download registered models into the per-user cache so that they work offline "
        f"afterwards. Known names: {', '.join(zoo.REGISTRY)}. The cache folder can be changed with "
        f"${zoo.CACHE_ENV}, and ${zoo.BASE_URL_ENV} downloads from a mirror (<base>/<file>).",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="registered model name(s)")
    parser.add_argument("--list", action="store_true",
                        help="list the registered models, their sizes and where they are")
    parser.add_argument("--force", action="store_true",
                        help="download again even if cached (the old copy is kept until the new "
                        "one has been checked)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.list:
        if args.names:
            raise UsageError("give either --list or model names, not both")
        print(format_table())
        return 0
    if not args.names:
        known = ", ".join(zoo.REGISTRY)
        raise UsageError(f"name the model(s) to download ({known}), or use --list")
    try:
        for name in args.names:
            zoo.get_entry(name)
        for name in args.names:
            was_there = zoo.local_path(name).is_file()
            path = zoo.fetch(name, progress=not args.quiet, force=args.force)
            if zoo.REGISTRY[name].url is None:
                state = "bundled with the package"
            else:
                state = "already cached" if was_there and not args.force else "downloaded"
            print(f"{name}: {path} ({state})")
    except (ValueError, FileNotFoundError, zoo.DownloadError) as err:
        raise UsageError(str(err)) from None
    return 0


def format_table() -> str:
    """The registry as a text table (name, variant, size, status, path), descriptions, cache folder.

    Sizes starting with ``~`` are the published approximate figures of files not present yet.
    """
    header = ("NAME", "VARIANT", "SIZE", "STATUS", "PATH")
    rows = [header]
    for name, entry in zoo.REGISTRY.items():
        path = zoo.local_path(name)
        present = path.is_file()
        if present:
            size = _mib(path.stat().st_size)
        elif entry.size is None:
            size = "?"
        else:
            size = ("" if entry.size_exact else "~") + _mib(entry.size)
        if entry.url is None:
            status = "bundled" if present else "not bundled yet"
        else:
            status = "cached" if present else "not cached"
        rows.append((name, entry.variant, size, status, str(path)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in rows]
    lines += ["", "models:"]
    lines += [f"  {name}: {entry.description}" for name, entry in zoo.REGISTRY.items()]
    lines += ["", f"cache folder: {zoo.cache_dir()} (set ${zoo.CACHE_ENV} to change it)"]
    return "\n".join(lines)


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
