"""ONNX export of the deployed RITM network, and ONNX Runtime as a forward-only backend.

RITM is a plain feedforward network (no per-image optimisation, unlike BRS), so it runs on any
forward-only runtime. :func:`export_onnx` writes the
:func:`~napari_ritm.model.fuse.optimize_for_inference` copy (BatchNorms folded, dead OCR attention
removed) as one ONNX graph with dynamic batch, height, width and click count; the click disks are
computed inside the graph. :class:`OnnxRITM` runs such a file with ONNX Runtime and is called like
the torch network, so the :class:`~napari_ritm.inference.predictor.Predictor` can use either.

Optional dependencies: exporting needs ``onnx`` and ``onnxscript`` (torch's exporter), running
needs ``onnxruntime``; a clear ImportError says which is missing.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from pathlib import Path

import torch

from napari_ritm.model.fuse import optimize_for_inference
from napari_ritm.model.ritm_net import RITMNet, RITMVariant

__all__ = ["METADATA_KEY", "OnnxRITM", "export_onnx"]

#: Key of the ONNX metadata entry that stores the :class:`RITMVariant` as JSON.
METADATA_KEY = "napari_ritm.variant"


def _require(module: str, purpose: str):
    try:
        return __import__(module)
    except ImportError as err:
        raise ImportError(
            f"{purpose} needs the '{module}' package: pip install onnx onnxscript onnxruntime"
        ) from err


def export_onnx(net: RITMNet, path: str | Path) -> Path:
    """Writes ``net`` (optimised for inference) to ``path`` as an ONNX model; returns the path.

    Graph inputs: ``image`` float32 (B, 3, H, W) in [0, 1], ``points`` float32 (B, 2N, 3) and,
    for models with a previous-mask input, ``prev_mask`` float32 (B, 1, H, W); output
    ``instances`` (B, 1, H, W) logits. B, H, W and N are dynamic. The variant is stored in the
    model's metadata under :data:`METADATA_KEY`.
    """
    _require("onnx", "ONNX export")
    _require("onnxscript", "ONNX export")
    from torch.export import Dim

    path = Path(path)
    deployed = optimize_for_inference(net).cpu()
    # Example sizes > 1 everywhere, so that no dimension is specialised to 0/1 while tracing.
    b, h, w = 2, 64, 72
    example = {
        "image": torch.rand(b, 3, h, w),
        "points": torch.tensor([[[10.0, 12.0, 0.0], [30.0, 40.0, 2.0], [50.0, 5.0, 1.0],
                                 [-1.0, -1.0, -1.0]]] * b),
    }
    batch, height, width = Dim("batch", max=64), Dim("height", min=8), Dim("width", min=8)
    shapes = {"image": {0: batch, 2: height, 3: width}, "points": {0: batch, 1: Dim("rows")}}
    if net.variant.with_prev_mask:
        example["prev_mask"] = torch.rand(b, 1, h, w)
        shapes["prev_mask"] = {0: batch, 2: height, 3: width}
    # The exporter's chatter (tracer warnings, "torchvision is not installed" notes) is not ours.
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                deployed, tuple(example.values()), input_names=list(example),
                output_names=["instances"], dynamic_shapes=tuple(shapes.values()),
                dynamo=True, optimize=True, verbose=False,
            )
    finally:
        registration.setLevel(level)
    program.model.metadata_props[METADATA_KEY] = json.dumps(dataclasses.asdict(net.variant))
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path))
    return path


class OnnxRITM:
    """An exported RITM network run by ONNX Runtime on the CPU, called like the torch network.

    ``OnnxRITM(path, threads=1)``; ``model(image, points, prev_mask=None)`` takes the tensors
    :class:`~napari_ritm.model.ritm_net.RITMNet` takes (float32 CPU tensors; points may be int)
    and returns ``{"instances": (B, 1, H, W) float32 logits}`` as a torch tensor. ``variant``
    comes from the file's metadata. ``threads`` sets ONNX Runtime's intra-op threads (without
    busy-waiting, so that a busy machine does not stall it).
    """

    device = torch.device("cpu")

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        ort = _require("onnxruntime", "The ONNX Runtime backend")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options,
                                            providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ValueError(
                f"{self.path}: not exported by napari-ritm (no {METADATA_KEY} metadata)")
        self.variant = RITMVariant(**json.loads(meta[METADATA_KEY]))
        self._inputs = {i.name for i in self.session.get_inputs()}

    def __call__(
        self, image: torch.Tensor, points: torch.Tensor, prev_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        feed = {"image": image.detach().cpu().float().contiguous().numpy(),
                "points": points.detach().cpu().float().contiguous().numpy()}
        if "prev_mask" in self._inputs:
            if prev_mask is None:
                prev_mask = image.new_zeros((image.shape[0], 1, *image.shape[2:]))
            feed["prev_mask"] = prev_mask.detach().cpu().float().contiguous().numpy()
        (logits,) = self.session.run(["instances"], feed)
        return {"instances": torch.from_numpy(logits)}
