"""Timings of the SAM-based peers on this CPU, with random weights (timing does not depend on them).

The SAM plugins compute an image embedding for every new image or slice (the encoder), then run
the prompt encoder + mask decoder per click (including the upsampling of the mask to the image
size). Measured here, per peer: ``encoder_s`` (``set_image``: resize, normalise, encoder) and
``click_s`` (``predict`` with the clicks so far and the previous low-res mask, one output mask).

Peers (optional, the ``benchmarks`` extra; a missing one is skipped with a note):
- ``sam_vit_b``: ``segment-anything`` (Meta), ViT-B encoder at 1024 px;
- ``mobile_sam``: ``mobilesam-mirror`` (MobileSAM, TinyViT-5M encoder at 1024 px);
- ``efficientvit_sam_l0``: ``efficientsam`` (EfficientViT-SAM-L0, encoder at 512 px).

torchvision cannot be installed beside the CPU torch here and timm is not needed for timing, so
the few calls these packages import from them are stood in (``_stand_ins``) when they are absent:
PIL resizing for ``resize``/``to_pil_image``, plain ToTensor/Normalize/Compose, identity DropPath.

    python benchmarks/peers.py [--sizes 1024,2048] [--repeats 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import types

import numpy as np
import torch

PEERS = ("sam_vit_b", "mobile_sam", "efficientvit_sam_l0")
_PACKAGES = {"sam_vit_b": "segment_anything", "mobile_sam": "mobile_sam",
             "efficientvit_sam_l0": "efficientsam"}


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    mod.__path__ = []  # importable as a package
    return mod


def _torchvision_stand_in() -> dict[str, types.ModuleType]:
    from PIL import Image

    def to_pil_image(array):
        return Image.fromarray(np.asarray(array))

    def resize(image, size):
        h, w = size
        return image.resize((w, h), Image.BILINEAR)

    class ToTensor:
        def __call__(self, array):
            return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / 255

    class Normalize:
        def __init__(self, mean, std):
            self.mean = torch.tensor(mean).view(-1, 1, 1)
            self.std = torch.tensor(std).view(-1, 1, 1)

        def __call__(self, tensor):
            return (tensor - self.mean) / self.std

    class Compose:
        def __init__(self, steps):
            self.steps = steps

        def __call__(self, x):
            for step in self.steps:
                x = step(x)
            return x

    def box_area(boxes):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

    def batched_nms(*args, **kwargs):
        raise RuntimeError("batched_nms is not part of the benchmark's torchvision stand-in")

    functional = _module("torchvision.transforms.functional", resize=resize,
                         to_pil_image=to_pil_image)
    transforms = _module("torchvision.transforms", functional=functional, ToTensor=ToTensor,
                         Normalize=Normalize, Compose=Compose)
    boxes = _module("torchvision.ops.boxes", box_area=box_area, batched_nms=batched_nms)
    ops = _module("torchvision.ops", boxes=boxes)
    root = _module("torchvision", transforms=transforms, ops=ops)
    return {"torchvision": root, "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional, "torchvision.ops": ops,
            "torchvision.ops.boxes": boxes}


def _timm_stand_in() -> dict[str, types.ModuleType]:
    class DropPath(torch.nn.Module):  # eval-mode DropPath is the identity
        def __init__(self, drop_prob=None):
            super().__init__()

        def forward(self, x):
            return x

    def to_2tuple(x):
        return tuple(x) if isinstance(x, (tuple, list)) else (x, x)

    layers = _module("timm.models.layers", DropPath=DropPath, to_2tuple=to_2tuple,
                     trunc_normal_=torch.nn.init.trunc_normal_)
    registry = _module("timm.models.registry", register_model=lambda fn: fn)
    models = _module("timm.models", layers=layers, registry=registry)
    return {"timm": _module("timm", models=models), "timm.models": models,
            "timm.models.layers": layers, "timm.models.registry": registry}


def _stand_ins() -> list[str]:
    """Install stand-ins for torchvision / timm when they cannot be imported; returns which."""
    used = []
    for name, build in (("torchvision", _torchvision_stand_in), ("timm", _timm_stand_in)):
        try:
            importlib.import_module(name)
        except Exception:  # missing, or the CUDA torchvision build failing against CPU torch
            for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
                del sys.modules[key]
            sys.modules.update(build())
            used.append(name)
    return used


def _build(peer: str):
    """(predictor, encoder input size) for ``peer`` with random weights."""
    if peer == "sam_vit_b":
        from segment_anything import SamPredictor, sam_model_registry

        return SamPredictor(sam_model_registry["vit_b"](checkpoint=None).eval()), 1024
    if peer == "mobile_sam":
        from mobile_sam import SamPredictor, sam_model_registry

        return SamPredictor(sam_model_registry["vit_t"](checkpoint=None).eval()), 1024
    if peer == "efficientvit_sam_l0":
        from efficientsam.models.efficientvit.sam import EfficientViTSamPredictor
        from efficientsam.sam_model_zoo import create_efficientvit_sam_model

        model = create_efficientvit_sam_model("efficientvit-sam-l0", pretrained=False).eval()
        return EfficientViTSamPredictor(model), 512
    raise ValueError(peer)


def _clicks(size: int) -> list[tuple[float, float, int]]:
    """Five (x, y, label) clicks, SAM's (x, y) order; the same places as click_latency's clicks."""
    c = size / 2
    return [(c, c, 1), (c - 0.03 * size, c + 0.04 * size, 1), (c + 0.06 * size, c - 0.1 * size, 0),
            (c + 0.09 * size, c + 0.01 * size, 1), (size / 3, size / 3, 0)]


def time_peer(peer: str, image: np.ndarray, repeats: int) -> dict:
    """Median encoder and per-click decoder times of ``peer`` on ``image`` (H, W, 3) uint8."""
    predictor, encoder_size = _build(peer)
    clicks = _clicks(image.shape[0])
    encoder, click_times = [], []
    with torch.inference_mode():
        for _ in range(repeats):
            t = time.perf_counter()
            predictor.set_image(image)
            encoder.append(time.perf_counter() - t)
            low_res = None
            for k in range(1, len(clicks) + 1):
                pts = np.array([[x, y] for x, y, _ in clicks[:k]], dtype=np.float32)
                labels = np.array([lab for _, _, lab in clicks[:k]], dtype=np.int64)
                t = time.perf_counter()
                masks, _, low = predictor.predict(point_coords=pts, point_labels=labels,
                                                  mask_input=low_res, multimask_output=False)
                click_times.append(time.perf_counter() - t)
                low_res = low
            assert masks.shape[-2:] == image.shape[:2]
    return {
        "encoder_input_px": encoder_size,
        "encoder_s": float(np.median(encoder)),
        "encoder_runs_s": [round(v, 4) for v in encoder],
        "click_median_s": float(np.median(click_times)),
        "click_p90_s": float(np.percentile(click_times, 90)),
        "first_mask_s": float(np.median(encoder) + click_times[0]),
    }


def measure_peers(images: dict[int, np.ndarray], repeats: int, peers=PEERS) -> dict:
    """``{peer: {size: timings} | {"skipped": reason}}`` for each image size; plus the stand-ins."""
    out: dict = {"stand_ins": _stand_ins(), "threads": torch.get_num_threads()}
    for peer in peers:
        try:
            importlib.import_module(_PACKAGES[peer])
        except Exception as err:  # not installed (optional extra) or broken
            reason = f"{_PACKAGES[peer]} not importable: {type(err).__name__}: {err}"
            out[peer] = {"skipped": reason}
            print(f"  {peer}: skipped ({out[peer]['skipped']})", flush=True)
            continue
        out[peer] = {}
        for size, image in images.items():
            res = time_peer(peer, image, repeats)
            out[peer][str(size)] = res
            print(f"  {peer} {size}px: encoder {res['encoder_s']:.2f} s, click median "
                  f"{1000 * res['click_median_s']:.0f} ms (p90 {1000 * res['click_p90_s']:.0f})",
                  flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024", help="square image sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    images = {int(s): rng.integers(0, 256, (int(s), int(s), 3), dtype=np.uint8)
              for s in args.sizes.split(",")}
    print(json.dumps(measure_peers(images, args.repeats), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
