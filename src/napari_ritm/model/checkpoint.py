"""Official RITM checkpoints: strict loading, variant detection and official-format saving.

A checkpoint is ``torch.save({"state_dict": OrderedDict[str, Tensor], "config": dict})``.
``config`` is what the official ``@serialize`` decorator records: the class name and, per
constructor parameter, ``{"type": "builtin"|"class", "value": ..., "specified": bool}``.
The variant is derived from the tensor shapes; where the config disagrees, the shapes win
(with a warning). Anything that is not exactly an RITM HRNet state dict is refused with a
:class:`CheckpointError` naming the file and the problem; nothing is ever partially loaded.
"""
from __future__ import annotations

import copy
import math
import pickle
import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from napari_ritm.model.files import atomic_write
from napari_ritm.model.ritm_net import IMAGENET_MEAN, IMAGENET_STD, RITMNet, RITMVariant

__all__ = [
    "CheckpointError",
    "OFFICIAL_CLASS",
    "detect_variant",
    "load_checkpoint",
    "official_config",
    "read_checkpoint",
    "save_checkpoint",
]

OFFICIAL_CLASS = "isegm.model.is_hrnet_model.HRNetModel"
_BATCHNORM = "torch.nn.modules.batchnorm.BatchNorm2d"

# Defaults of the official HRNetModel / ISModel constructors, in the order the official
# serializer lists them (HRNetModel's own parameters first, then ISModel's).
_DEFAULTS: dict[str, Any] = {
    "width": 48,
    "ocr_width": 256,
    "small": False,
    "backbone_lr_mult": 0.1,
    "norm_layer": _BATCHNORM,
    "use_rgb_conv": True,
    "with_aux_output": False,
    "norm_radius": 260,
    "use_disks": False,
    "cpu_dist_maps": False,
    "clicks_groups": None,
    "with_prev_mask": False,
    "use_leaky_relu": False,
    "binary_prev_mask": False,
    "conv_extend": False,
    "norm_mean_std": (list(IMAGENET_MEAN), list(IMAGENET_STD)),
}
# Settings this implementation computes; a checkpoint asking for another value is refused.
_REQUIRED = {
    "use_rgb_conv": False,
    "use_disks": True,
    "use_leaky_relu": True,
    "clicks_groups": None,
    "binary_prev_mask": False,
    "conv_extend": False,
}
# Keys whose shapes define the variant.
_WIDTH_KEY = "feature_extractor.transition1.0.0.weight"  # (width, 256, 3, 3)
_OCR_KEY = "feature_extractor.conv3x3_ocr.0.weight"  # (2 * ocr_width, 15 * width, 3, 3)
_MAPS_KEY = "maps_transform.0.weight"  # (16, 3 with prev mask | 2 without, 1, 1)
_LAYER1_BLOCK = re.compile(r"feature_extractor\.layer1\.(\d+)\.conv1\.weight")


class CheckpointError(ValueError):
    """A file that is not a loadable RITM HRNet checkpoint; the message names file and problem."""


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict, dict]:
    """Loads ``path`` with ``torch.load(weights_only=True)``; returns ``(state_dict, config)``.

    Raises :class:`CheckpointError` for a missing, unreadable, truncated or code-carrying file
    and for a file without a ``state_dict`` of tensors or a ``config`` dict.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only load failed" in str(err).lower():
            raise CheckpointError(
                f"{path}: refused, the file contains pickled Python objects that need code to "
                "load (torch.load(weights_only=True) only accepts tensors and plain containers)"
            ) from err
        raise CheckpointError(f"{path}: corrupt checkpoint ({err})") from err
    except Exception as err:  # torch raises RuntimeError, EOFError, OSError... for bad files
        raise CheckpointError(
            f"{path}: cannot be read as a torch checkpoint, corrupt or truncated? "
            f"({type(err).__name__}: {err})"
        ) from err
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"{path}: not an RITM checkpoint, expected a dict with 'state_dict' and 'config', "
            f"got {type(ckpt).__name__}"
        )
    state_dict, config = ckpt.get("state_dict"), ckpt.get("config")
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: not an RITM checkpoint, no 'state_dict' dict in it")
    bad = [k for k, v in state_dict.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if bad:
        raise CheckpointError(f"{path}: state_dict entries that are not tensors: {_preview(bad)}")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not an RITM checkpoint, no 'config' dict in it")
    return state_dict, config


def _preview(names: list, n: int = 5) -> str:
    shown = ", ".join(str(x) for x in names[:n])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > n else shown


def _config_params(config: dict, source: str) -> dict[str, Any]:
    """The effective constructor arguments: values from ``config``, else official defaults."""
    if config.get("class") != OFFICIAL_CLASS:
        raise CheckpointError(
            f"{source}: unsupported model class {config.get('class')!r}, only {OFFICIAL_CLASS} "
            "(RITM HRNet) is supported"
        )
    params = config.get("params")
    if not isinstance(params, dict):
        raise CheckpointError(f"{source}: malformed config, no 'params' dict")
    values = dict(_DEFAULTS)
    for name, entry in params.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise CheckpointError(f"{source}: malformed config entry for {name!r}: {entry!r}")
        values[name] = entry["value"]
    return values


def detect_variant(
    state_dict: dict, config: dict, source: str | Path = "checkpoint"
) -> RITMVariant:
    """Derives the :class:`RITMVariant` of a checkpoint from its tensor shapes and config.

    width, ocr_width, small and with_prev_mask come from the shapes (the config is only
    cross-checked: a disagreement is warned about and the shapes win); norm_radius comes
    from the config. Raises :class:`CheckpointError` for another architecture or settings
    this implementation does not compute (e.g. use_disks=False).
    """
    source = str(source)
    missing = [k for k in (_WIDTH_KEY, _OCR_KEY, _MAPS_KEY) if k not in state_dict]
    blocks = sorted(int(m.group(1)) for k in state_dict if (m := _LAYER1_BLOCK.fullmatch(k)))
    if missing or not blocks:
        raise CheckpointError(
            f"{source}: not an RITM HRNet state_dict (another architecture?), keys missing: "
            f"{_preview(missing or ['feature_extractor.layer1.*'])}"
        )
    width_w, ocr_w, maps_w = state_dict[_WIDTH_KEY], state_dict[_OCR_KEY], state_dict[_MAPS_KEY]
    if width_w.ndim != 4 or ocr_w.ndim != 4 or maps_w.ndim != 4 or ocr_w.shape[0] % 2:
        raise CheckpointError(
            f"{source}: unexpected shapes {tuple(width_w.shape)} / {tuple(ocr_w.shape)} / "
            f"{tuple(maps_w.shape)} for {_WIDTH_KEY} / {_OCR_KEY} / {_MAPS_KEY}"
        )
    if blocks not in ([0, 1], [0, 1, 2, 3]):
        raise CheckpointError(f"{source}: HRNet layer1 has blocks {blocks}, expected 2 or 4")
    if maps_w.shape[1] not in (2, 3):
        raise CheckpointError(
            f"{source}: {_MAPS_KEY} has {maps_w.shape[1]} input channels, expected 3 "
            "(prev mask + 2 click disks) or 2 (click disks only)"
        )
    from_shapes = {
        "width": int(width_w.shape[0]),
        "ocr_width": int(ocr_w.shape[0]) // 2,
        "small": len(blocks) == 2,
        "with_prev_mask": maps_w.shape[1] == 3,
    }
    values = _config_params(config, source)
    for name, required in _REQUIRED.items():
        if values[name] != required:
            raise CheckpointError(
                f"{source}: config has {name}={values[name]!r}; only {name}={required!r} "
                "(the setting of the released RITM models) is supported"
            )
    mean_std = values["norm_mean_std"]
    expected = (*IMAGENET_MEAN, *IMAGENET_STD)
    try:
        flat = [float(v) for part in mean_std for v in part]
    except (TypeError, ValueError):
        flat = []
    if len(flat) != 6 or not all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(flat, expected)):
        raise CheckpointError(
            f"{source}: config norm_mean_std={mean_std!r}; only the ImageNet mean/std is supported"
        )
    for name, value in from_shapes.items():
        if values[name] != value:
            warnings.warn(
                f"{source}: config says {name}={values[name]!r} but the weights have "
                f"{name}={value!r}; using the weights",
                stacklevel=3,
            )
    radius = values["norm_radius"]
    is_number = isinstance(radius, (int, float)) and not isinstance(radius, bool)
    if not is_number or not 0 < radius < math.inf:
        raise CheckpointError(f"{source}: config norm_radius={radius!r} is not a positive number")
    return RITMVariant(norm_radius=float(radius), **from_shapes)


def _check_state_dict(net: RITMNet, state_dict: dict, source: str) -> None:
    expected = net.state_dict()
    missing = [k for k in expected if k not in state_dict]
    extra = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_preview(missing)}")
    if extra:
        problems.append(f"unexpected keys: {_preview(extra)}")
    if wrong:
        problems.append(f"wrong shapes: {_preview(wrong)}")
    if problems:
        raise CheckpointError(
            f"{source}: state_dict does not match {net.variant.name}: " + "; ".join(problems)
        )


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> RITMNet:
    """Loads an official-format RITM HRNet checkpoint into a :class:`RITMNet`.

    Strict: every key of the model must be present with its shape and nothing else. Returns
    the network in eval mode, float32, on ``device``. Raises :class:`CheckpointError` (a
    ``ValueError``) naming the file and the problem otherwise.
    """
    state_dict, config = read_checkpoint(path, device)
    variant = detect_variant(state_dict, config, source=path)
    net = RITMNet.from_variant(variant).to(device)
    _check_state_dict(net, state_dict, str(path))
    net.load_state_dict(state_dict, strict=True)
    return net.eval()


def official_config(variant: RITMVariant) -> dict[str, Any]:
    """The ``config`` the official code records for this variant (class name + params).

    Parameter order, ``specified`` flags and value types equal those of the released
    checkpoints, so the official ``load_is_model`` rebuilds the same network.
    """
    radius = variant.norm_radius
    specified: dict[str, Any] = {"width": variant.width, "ocr_width": variant.ocr_width}
    if variant.small:
        specified["small"] = True
    specified.update(
        with_aux_output=True,
        use_leaky_relu=True,
        use_rgb_conv=False,
        use_disks=True,
        norm_radius=int(radius) if float(radius).is_integer() else float(radius),
    )
    if variant.with_prev_mask:
        specified["with_prev_mask"] = True
    params = {
        name: {"type": "builtin", "value": value, "specified": True}
        for name, value in specified.items()
    }
    for name, value in _DEFAULTS.items():
        if name not in params:
            kind = "class" if name == "norm_layer" else "builtin"
            params[name] = {"type": kind, "value": copy.deepcopy(value), "specified": False}
    return {"class": OFFICIAL_CLASS, "params": params}


def save_checkpoint(net: RITMNet, path: str | Path) -> None:
    """Writes ``net`` in the official format ``{"state_dict", "config"}`` (tensors on CPU).

    The file is written beside ``path`` and then moved into place
    (:func:`~napari_ritm.model.files.atomic_write`), so an interrupted save never leaves a
    truncated checkpoint at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = net.state_dict()
    state_dict = OrderedDict((k, v.detach().cpu()) for k, v in full.items())
    state_dict._metadata = full._metadata  # per-module versions, saved by the official code too
    ckpt = {"state_dict": state_dict, "config": official_config(net.variant)}
    atomic_write(path, lambda tmp: torch.save(ckpt, tmp))
