"""``napari-ritm export --onnx OUT.onnx --model NAME_OR_PATH``: the network as an ONNX model.

The exported graph is the inference-optimised network (BatchNorms folded, the OCR attention that
cannot act with one class removed), with dynamic image size, batch and click count; ONNX Runtime
can then run it as the predictor's backend (``onnxruntime`` installed). Needs ``onnx`` and
``onnxscript`` for exporting.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from napari_ritm import commands
from napari_ritm.commands import UsageError, load_model_or_exit


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export", help="export a model to ONNX (for the ONNX Runtime backend)",
        description=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--onnx", required=True, type=Path, metavar="OUT.onnx",
                        help="where to write the ONNX model")
    commands.add_model_flag(parser)
    parser.add_argument("--check", action="store_true",
                        help="run the exported file once with ONNX Runtime and compare it with "
                             "torch on a random input")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.onnx.suffix.lower() != ".onnx":
        raise UsageError(f"--onnx must name a .onnx file, got {args.onnx}")
    if args.onnx.parent and not args.onnx.parent.exists():
        raise UsageError(f"the folder {args.onnx.parent} does not exist")
    from napari_ritm.model.onnx_backend import OnnxRITM, export_onnx

    net = load_model_or_exit(args.model)
    try:
        path = export_onnx(net, args.onnx)
    except ImportError as err:
        raise UsageError(str(err)) from None
    print(f"{args.model} ({net.variant.name}) -> {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    if args.check:
        try:
            diff = _check(net, OnnxRITM(path))
        except ImportError as err:
            raise UsageError(str(err)) from None
        print(f"check: max |logit difference| to torch = {diff:.2e} on a random 1x3x96x128 input")
        if diff > 1e-3:
            raise UsageError(f"the exported model differs from torch by {diff:.2e} (> 1e-3)")
    return 0


def _check(net, onnx_model) -> float:
    import torch

    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 96, 128, generator=gen)
    prev = torch.rand(1, 1, 96, 128, generator=gen)
    points = torch.tensor([[[40.0, 50.0, 0.0], [70.0, 20.0, 1.0]]])
    with torch.inference_mode():
        want = net(image, points, prev)["instances"]
    got = onnx_model(image, points, prev)["instances"]
    return float((want - got).abs().max())
