"""Helpers the benchmarks share: paths of the repository and the shared data, the machine they
ran on, synthetic images, random networks that look like released ones, and a common interface
to time predictors (ours, the reference port, ONNX Runtime).
"""
from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np
import peers
import torch
from reference_port import ReferencePredictor

from napari_ritm.evaluation.noc import noc
from napari_ritm.inference.clicks import Click
from napari_ritm.inference.modes import INTERACTIVE
from napari_ritm.inference.planes import ImageSource
from napari_ritm.model.ritm_net import RITMNet, RITMVariant

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAPARI_RITM_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
#: sets this repository's scripts write: stacks linked from slices, public 3D stacks
#: (scripts/make_stack_sets.py, scripts/import_stacks.py)
STACK_DATA = Path(os.environ.get("NAPARI_RITM_STACKS", REPO / "runs" / "data"))
RESULTS = REPO / "benchmarks" / "results"
SPLIT = REPO / "recipes" / "shared_split.json"
#: the official demo's predictor settings, which the reference port runs
REFERENCE_SETTINGS = {"zoom_in": True, "target_size": 400, "flip": True, **INTERACTIVE}


def set_dir(name: str) -> Path:
    """The folder of dev set ``name``: in the shared data, else among the sets this repository's
    scripts import (``STACK_DATA``: scripts/import_public_sets.py, scripts/import_stacks.py)."""
    shared = DATA / name
    return shared if shared.is_dir() else STACK_DATA / name


def run_parser(description: str, sets) -> argparse.ArgumentParser:
    """The flags of a benchmark that runs one model on a val half: ``--model``, ``--tag`` (the
    run's name), ``--subset`` (val_select or val_report) and ``--sets`` (of ``sets``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="default")
    parser.add_argument("--tag", help="name of the run (default: the model)")
    parser.add_argument("--subset", choices=("val_select", "val_report"), default="val_select")
    parser.add_argument("--sets", nargs="+", choices=sorted(sets), default=list(sets))
    return parser


def val_dataset(name: str, subset: str = "val", **options):
    """The val images of shared set ``name`` (committed split; ``subset`` "val_select" or
    "val_report" for one half) as an ``InstanceDataset``; ``options`` go to it (e.g.
    ``min_area``, ``max_objects_per_image``, ``limit``)."""
    from napari_ritm.commands.evaluate import split_names
    from napari_ritm.evaluation.datasets import InstanceDataset

    return InstanceDataset(set_dir(name), names=split_names(SPLIT, subset, [set_dir(name)])[0],
                           **options)


def machine() -> dict:
    """What a result was measured on: platform, CPU count, Python and torch."""
    return {"platform": platform.platform(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__}


def paired_noc(ious: list[list[float]], base: list[list[float]],
               thresholds: tuple[float, ...] = (0.85, 0.90), max_clicks: int = 20) -> dict:
    """Per-object difference of NoC from ``base`` (IoUs per click of the same objects, in the
    same order): ``{"NoC@85": {"mean", "se"}, ...}``, se the standard error of the mean."""
    out = {}
    for t in thresholds:
        d = np.array([noc(a, t, max_clicks) - noc(b, t, max_clicks) for a, b in zip(ious, base)])
        out[f"NoC@{round(t * 100)}"] = {"mean": float(d.mean()),
                                        "se": float(d.std(ddof=1) / np.sqrt(len(d)))}
    return out


def random_network(variant: str, seed: int = 0) -> RITMNet:
    """A randomly initialised RITMNet whose BatchNorms look like the fake release checkpoints':
    weight U(0.6, 1.4), bias N(0, 0.2^2), running statistics averaged over 3 train-mode forwards."""
    torch.manual_seed(seed)
    net = RITMNet.from_variant(RITMVariant.named(variant))
    gen = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = 0.6 + 0.8 * torch.rand(m.num_features, generator=gen)
            m.bias.data = 0.2 * torch.randn(m.num_features, generator=gen)
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        for _ in range(3):
            image = torch.rand(2, 3, 160, 160, generator=gen)
            points = torch.tensor([[[40.0, 60.0, 0.0], [120.0, 90.0, 1.0]]] * 2)
            net(image, points, torch.rand(2, 1, 160, 160, generator=gen))
    return net.eval()


def synthetic_image(size: int, seed: int) -> np.ndarray:
    """(size, size, 3) uint8: a smooth background with bright round 'cells' and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = 40 + 30 * np.sin(3 * xx + 2 * yy)
    cells = np.zeros((size, size), np.float32)
    for cy, cx, r in zip(rng.random(40), rng.random(40), 0.02 + 0.05 * rng.random(40)):
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        cells = np.maximum(cells, inside * (120 + 80 * rng.random()))
    gray = base + cells + rng.normal(0, 8, (size, size)).astype(np.float32)
    rgb = np.stack([gray, 0.8 * gray + 20, 0.6 * gray + 30], axis=2)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def clicks_for(size: int) -> list[tuple[float, float, bool]]:
    """Five (y, x, positive) clicks, the same places as the peers' clicks."""
    return [(y, x, lab == 1) for x, y, lab in peers._clicks(size)]


class Runner:
    """One predictor behind a common interface: ``new_image(u8)`` then ``click(k)`` (k clicks)."""

    def __init__(self, name: str, predictor, clicks) -> None:
        self.name, self.predictor, self.clicks = name, predictor, clicks

    def new_image(self, image_u8: np.ndarray) -> None:
        if isinstance(self.predictor, ReferencePredictor):
            self.predictor.set_input_image(image_u8)
        else:  # what the session does: a reader of the plane
            self.predictor.set_image(ImageSource(image_u8, rgb=True).windows(()))

    def click(self, k: int):
        if isinstance(self.predictor, ReferencePredictor):
            return self.predictor.get_prediction(self.clicks[:k])
        clicks = [Click(y, x, p) for y, x, p in self.clicks[:k]]
        return self.predictor.predict_local(clicks)  # what the session asks of it
