"""Why exact mode is not faster: the arithmetic of one exact click and how fast this CPU does it.

    python benchmarks/network_throughput.py [--model default] [--size 400]

One exact-mode network call is a ``size`` x ``size`` crop and its mirror (batch 2). For the plain
network, the folded channels_last copy (what exact mode runs when optimize_exact's probe passes)
and that copy under bfloat16 autocast, this prints and writes
benchmarks/results/network_throughput.json: FLOPs (torch's FlopCounterMode), median forward time
over 5 calls at 1 torch thread, GFLOP/s, and the max |probability change| against the plain
network on ``fuse.probe_batch(size)``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from napari_ritm.model.fuse import optimize_for_inference, probe_batch
from napari_ritm.model.zoo import load_model

RESULTS = Path(__file__).resolve().parent / "results" / "network_throughput.json"


def _measure(forward, inputs, want: torch.Tensor) -> dict:
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            forward(*inputs)
        probs = torch.sigmoid(forward(*inputs)["instances"].float())
        times = []
        for _ in range(6):  # the first call warms up
            t = time.perf_counter()
            forward(*inputs)
            times.append(time.perf_counter() - t)
    seconds = float(np.median(times[1:]))
    flops = counter.get_total_flops()
    return {"gflop": round(flops / 1e9, 2), "forward_ms": round(1000 * seconds, 1),
            "gflop_per_s": round(flops / seconds / 1e9, 1),
            "max_abs_prob_change": float((probs - want).abs().max())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--size", type=int, default=400)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    net = load_model(args.model)
    folded = optimize_for_inference(net, channels_last=True)
    inputs = probe_batch(args.size)
    with torch.inference_mode():
        want = torch.sigmoid(net(*inputs)["instances"])

    def folded_bf16(*x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return folded(*x)

    report = {"model": args.model, "input": [2, 3, args.size, args.size], "threads": 1,
              "plain": _measure(net, inputs, want),
              "folded_channels_last": _measure(folded, inputs, want),
              "folded_bfloat16_autocast": _measure(folded_bf16, inputs, want)}
    for name, row in report.items():
        if isinstance(row, dict):
            print(f"{name:26s} {row['gflop']:6.2f} GFLOP {row['forward_ms']:7.1f} ms "
                  f"{row['gflop_per_s']:6.1f} GFLOP/s  max |dp| {row['max_abs_prob_change']:.1e}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1))
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
