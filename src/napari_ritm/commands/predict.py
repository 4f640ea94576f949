"""``napari-ritm predict``: segment one object of an image from clicks given on the command line.

The clicks are replayed one at a time, oldest first, exactly as they would be made in the widget
(RITM feeds each step's prediction into the next). Output: a uint8 TIFF mask with values 0/1 and,
with ``--prob``, the float32 probabilities.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from napari_ritm import commands
from napari_ritm.commands import UsageError, load_model_or_exit
from napari_ritm.inference.clicks import DEFAULT_THRESHOLD

_CLICK = re.compile(r"^\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*,\s*([+-]|pos|neg)\s*$")
_TIFF = (".tif", ".tiff")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="segment one object from clicks and write a mask",
        description="Segment one object of IMAGE from clicks (replayed in order, as in the widget) "
        "and write a uint8 TIFF mask with values 0 (background) and 1 (object).",
    )
    parser.add_argument("image", type=Path, help="input image (TIFF, PNG or JPEG)")
    parser.add_argument("--click", "-c", action="append", default=[], metavar="Y,X,SIGN",
                        help="a click at row Y, column X (pixels); SIGN is + (object) or - "
                        "(background). Repeat in click order, e.g. -c 120,88,+ -c 40,30,-")
    parser.add_argument("--init-mask", type=Path, metavar="MASK",
                        help="existing mask to refine (nonzero = object), same height and width")
    commands.add_model_flag(parser)
    parser.add_argument("--threshold", type=float,
                        help="probability above which a pixel is object (default: the "
                        "threshold fitted to your labels that the model's card records, "
                        "else 0.49)")
    parser.add_argument("--channel", type=int, metavar="C",
                        help="channel to segment in a multichannel image")
    parser.add_argument("--channel-axis", type=int, metavar="A",
                        help="axis of the channels (default: the last axis)")
    parser.add_argument("--slice", metavar="Z[,...]",
                        help="the plane to segment in a stack: its index along the first axis "
                        "(Z or T), or comma-separated indices of the leading axes of a 4D or "
                        "5D image, e.g. 3,12 for time point 3, slice 12")
    commands.add_predictor_flags(parser)
    parser.add_argument("--max-size", type=int, metavar="PX",
                        help="exact/fast modes: limit the long side of the network input")
    commands.add_threads_flag(parser)
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="OUT.tif",
                        help="output mask (uint8 TIFF, 0/1)")
    parser.add_argument("--prob", type=Path, metavar="PROB.tif",
                        help="also write the probabilities (float32 TIFF)")
    parser.set_defaults(handler=run)


def parse_click(text: str) -> tuple[float, float, bool]:
    """``"Y,X,+"`` / ``"Y,X,-"`` -> (y, x, positive); UsageError when malformed."""
    match = _CLICK.match(text)
    if match is None:
        raise UsageError(f"malformed --click {text!r}: expected Y,X,+ or Y,X,- (e.g. 120,88,+)")
    try:
        y, x = float(match.group(1)), float(match.group(2))
    except ValueError:
        raise UsageError(f"malformed --click {text!r}: Y and X must be numbers") from None
    return y, x, match.group(3) in ("+", "pos")


def read_image(path: Path) -> np.ndarray:
    """Pixels of a TIFF (tifffile) or PNG/JPEG/... (imageio); UsageError when unreadable."""
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    from napari_ritm.evaluation.folders import read_array

    try:
        return np.asarray(read_array(path))
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad input file
        raise UsageError(f"cannot read {path}: {err}") from None


def select_plane(image: np.ndarray, index: str | None) -> np.ndarray:
    """The plane of ``image`` at ``--slice`` (comma-separated leading indices); UsageError when
    they do not exist."""
    if index is None:
        return image
    try:
        key = tuple(int(v) for v in index.split(","))
    except ValueError:
        raise UsageError(f"--slice {index}: expected integers, e.g. --slice 3 or "
                         "--slice 3,12") from None
    if len(key) > image.ndim - 2 or not all(-n <= k < n for k, n in zip(key, image.shape)):
        raise UsageError(f"--slice {index} does not exist in an image of shape {image.shape}")
    return image[key]


def run(args: argparse.Namespace) -> int:
    from napari_ritm.inference.normalize import normalize_image

    clicks = [parse_click(text) for text in args.click]
    if not clicks:
        raise UsageError("give at least one --click Y,X,+")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UsageError(f"--threshold must lie in [0, 1], got {args.threshold}")
    if args.mode == "window" and args.max_size is not None:
        raise UsageError("--max-size applies to --mode exact or fast; the window mode never "
                         "shows the network more than 256 px")
    for option, path in (("--output", args.output), ("--prob", args.prob)):
        if path is not None and path.suffix.lower() not in _TIFF:
            raise UsageError(f"{option} must be a .tif/.tiff file, got {path}")

    raw = select_plane(read_image(args.image), args.slice)
    try:
        image = normalize_image(raw, channel=args.channel, channel_axis=args.channel_axis)
    except ValueError as err:
        hint = (" (use --slice Z / --channel C for stacks)"
                if "shape" in str(err) and raw.ndim > 2 else "")
        raise UsageError(f"{args.image}: {err}{hint}") from None
    h, w = image.shape[:2]
    for y, x, _ in clicks:
        if not (0 <= y < h and 0 <= x < w):
            raise UsageError(
                f"click ({y:g}, {x:g}) lies outside the image ({h} rows x {w} columns)"
            )
        if raw.dtype.kind == "f" and raw.shape[:2] == (h, w) and np.isnan(
            raw[round(y), round(x)]
        ).any():
            raise UsageError(f"click ({y:g}, {x:g}) is on a pixel without data (NaN): click "
                             "on the object itself")
    if not any(positive for _, _, positive in clicks):
        raise UsageError("give at least one positive click (Y,X,+) on the object: background "
                         "clicks alone do not say which object to segment")

    init_mask = None
    if args.init_mask is not None:
        mask = np.squeeze(read_image(args.init_mask))
        if mask.shape != (h, w):
            raise UsageError(f"--init-mask has shape {mask.shape}, the image is {h}x{w}")
        init_mask = (mask > 0).astype(np.float32)

    probs, mask = _predict(args, image, clicks, init_mask)
    if not mask.any():
        raise UsageError("the model found no object at these clicks, so nothing was written: "
                         "click nearer the middle of the object, add clicks, or lower "
                         f"--threshold (now {args.threshold:g})")

    import tifffile

    try:
        tifffile.imwrite(args.output, mask.astype(np.uint8))
        if args.prob is not None:
            tifffile.imwrite(args.prob, probs)
    except OSError as err:
        raise UsageError(f"cannot write the output: {err}") from None
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    print(f"wrote {args.output}: an object of {int(mask.sum()):,} pixels in rows "
          f"{rows[0]}-{rows[-1]}, columns {cols[0]}-{cols[-1]} (of {h} x {w})")
    outside = [(y, x) for y, x, positive in clicks if positive and not mask[round(y), round(x)]]
    for y, x in outside:
        print(f"note: the object does not hold the positive click ({y:g}, {x:g}): check that "
              "it lies on the object", file=sys.stderr)
    return 0


def _predict(
    args: argparse.Namespace, image: np.ndarray, clicks: list[tuple[float, float, bool]],
    init_mask: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load the model and replay the clicks; returns the final probabilities and bool mask."""
    import torch

    from napari_ritm.inference.clicks import Click
    from napari_ritm.inference.modes import make_predictor

    torch.set_num_threads(args.threads)
    model = load_model_or_exit(args.model)
    # the predictor keeps its own threshold (where the window grows, what the paper's modes
    # zoom in on) and the mask is cut at --threshold, as the widget's Threshold does
    overrides: dict = {"flip": False} if args.no_flip else {}
    if args.mode != "window":
        overrides.update(max_size=args.max_size)
    predictor = make_predictor(model, args.mode, **overrides)
    if args.threshold is None:  # the one fitted to the user's labels with this model file
        from napari_ritm.model.user_models import recorded_threshold

        info = getattr(predictor, "info", {})
        args.threshold = recorded_threshold(args.model, info.get("sha256"))
        if args.threshold is not None:
            print(f"threshold {args.threshold:g}: fitted to your labels (the card of "
                  f"{args.model})")
        else:
            args.threshold = DEFAULT_THRESHOLD
    predictor.set_image(image)
    made: list[Click] = []
    for y, x, positive in clicks:
        made.append(Click(y, x, positive))
        if args.mode == "window":
            probs = predictor.predict(made, init_mask)
        else:  # the official demo's way: the initial mask on every click, indices from 1
            probs = predictor.predict(made, init_mask, index_offset=int(init_mask is not None))
    return probs, probs > args.threshold
