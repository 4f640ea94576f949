"""``napari-ritm replay``: rebuild labels from a record saved by the widget or a Session."""
from __future__ import annotations

import argparse
from pathlib import Path

from napari_ritm.commands import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replay",
        help="rebuild labels from a session's record (the widget's Save record)",
        description="Run the actions of a record (model, clicks, undos, finishes, propagations) "
        "again on IMAGE and write the labels they build. Same machine and model: the same "
        "labels, bit for bit.",
    )
    p.add_argument("record", type=Path, help="the record (.json) saved by the widget")
    p.add_argument("--image", type=Path, required=True, help="the image that was segmented")
    p.add_argument("--labels", type=Path, metavar="START.tif",
                   help="the labels the session started from, when it refined existing ones")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="OUT.tif",
                   help="where to write the labels (TIFF)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from napari_ritm.commands.predict import read_image
    from napari_ritm.session.record import Record
    from napari_ritm.session.replay import replay

    if args.out.suffix.lower() not in (".tif", ".tiff"):
        raise UsageError(f"--out must be a .tif/.tiff file, got {args.out}")
    try:
        record = Record.load(args.record)
    except ValueError as err:
        raise UsageError(str(err)) from None
    image = read_image(args.image)
    if list(image.shape) != record.image["shape"]:
        raise UsageError(f"--image has shape {image.shape}; the record was made on an image of "
                         f"shape {tuple(record.image['shape'])}")
    start = read_image(args.labels) if args.labels is not None else None
    try:
        result = replay(record, image, start)
    except (ValueError, OSError) as err:
        raise UsageError(f"cannot replay {args.record}: {err}") from None
    import tifffile

    tifffile.imwrite(args.out, result.labels)
    verdict = {True: "the labels match the record", False: "the labels differ from the record",
               None: "the record has no final labels to compare with"}[result.exact]
    print(f"replayed {len(record.actions)} actions into {args.out}: {verdict}")
    for note in result.notes:
        print(f"note: {note}")
    return 0
