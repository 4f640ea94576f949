"""Training throughput (samples/s) of the RITM recipe on this machine.

Times ``Trainer.train_step`` (iterative clicks, forward, backward, Adam) for h18s at crops
256x256 and 320x480 on fixed batches of augmented dsb2018 crops, after warm-up steps, in two
modes: ``recipe`` (0..3 no-grad iterative clicks per batch, seeded, as in training) and
``single`` (no iterative clicks: one forward and backward). The data pipeline is not timed.

    python benchmarks/train_speed.py [--device cpu|cuda] [--batch-size 4] [--steps 3] [--threads N]

Writes benchmarks/results/train_speed.json (one entry per device; other devices' entries kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS as RESULTS_DIR
from common import SHARED
from torch.utils.data import default_collate

from napari_ritm.model.ritm_net import RITMNet
from napari_ritm.training.augment import Augmenter
from napari_ritm.training.data import ClickDataset, read_folder
from napari_ritm.training.optim import init_weights
from napari_ritm.training.options import TrainOptions
from napari_ritm.training.sampler import MultiPointSampler
from napari_ritm.training.trainer import Trainer

RESULTS = RESULTS_DIR / "train_speed.json"


def measure(samples, crop, mode: str, args) -> dict:
    """samples/s of train steps at one crop size in one mode."""
    data = ClickDataset(samples, MultiPointSampler(24), crop_size=crop, augmenter=Augmenter(crop),
                        epoch_len=args.batch_size * (args.warmup + args.steps), seed=0)
    b = args.batch_size
    batches = [default_collate([data[i * b + j] for j in range(b)])
               for i in range(args.warmup + args.steps)]
    torch.manual_seed(0)
    options = TrainOptions(out=Path(tempfile.gettempdir()) / "unused.pth", steps=10**6,
                           batch_size=b, crop_size=crop, device=args.device, progress=False,
                           max_num_next_clicks=3 if mode == "recipe" else 0)
    trainer = Trainer(init_weights(RITMNet(18, 48, small=True)), samples, [], options)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    extra = []
    for i, batch in enumerate(batches):
        if i == args.warmup:
            sync()
            start = time.perf_counter()
        parts = trainer.train_step(batch, np.random.default_rng([0, i]))
        if i >= args.warmup:
            extra.append(parts["iter_clicks"])
    sync()
    seconds = time.perf_counter() - start
    trainer.close()
    out = {"crop": list(crop), "mode": mode, "batch_size": b, "timed_steps": args.steps,
           "s_per_step": round(seconds / args.steps, 3),
           "samples_per_s": round(b * args.steps / seconds, 3),
           "mean_iterative_clicks": float(np.mean(extra))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--crops", default="256x256,320x480")
    parser.add_argument("--modes", default="recipe,single")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    samples = read_folder(SHARED / "data" / "dsb2018")
    load = round(os.getloadavg()[0], 2)  # other work on the machine skews CPU figures
    crops = [tuple(int(v) for v in c.split("x")) for c in args.crops.split(",")]
    runs = []
    for crop in crops:
        for mode in args.modes.split(","):
            result = measure(samples, crop, mode, args)
            runs.append(result)
            print(f"h18s {crop[0]}x{crop[1]} {mode:>6}: {result['samples_per_s']:.2f} samples/s "
                  f"({result['s_per_step']:.2f} s/step, batch {args.batch_size})", flush=True)
    name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    entry = {"model": "h18s", "device": name, "torch": torch.__version__,
             "threads": args.threads, "cpu_count": os.cpu_count(), "load_avg_1min": load,
             "amp": "bf16/fp16 autocast" if args.device == "cuda" else "off", "runs": runs}
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.device] = entry
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
