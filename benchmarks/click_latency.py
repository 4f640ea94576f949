"""Per-click latency on this CPU: napari-ritm's exact and fast modes beside a plain port of the
reference predictor, the SAM-based peers, memory and thread settings, all in one run.

    python benchmarks/click_latency.py            # full run (about 20-30 min on 2 busy cores)
    python benchmarks/click_latency.py --quick    # smoke run (default model, 1024 px, ~1.5 min),
                                                  # written to click_latency_quick.json

What is timed, for the shipped default model (h18s, trained) and for h18s / h18 / h32 with
random weights (timing does not depend on their values; BatchNorm statistics are calibrated like
the fake release checkpoints so that the parity check means something) on synthetic 1024^2 and
2048^2 RGB images, five clicks per image, interactive settings (the official demo's and the
widget's: ZoomIn from the first click, <= 800 px):

- ``reference``: ``reference_port`` - the official NoBRS predictor ported plainly, running the
  package's RITMNet the plain way (float32, BatchNorm unfused, full OCR attention, both outputs
  upsampled) under torch.no_grad(), ZoomIn 400 + flip;
- ``exact``: ``make_predictor(net, "exact", interactive=True)``: same settings,
  outputs checked against the reference (max |dp| per click, previous masks re-synchronised).
  Its network is the folded channels_last copy only where optimize_exact's probe passes (trained
  weights, random h18s), else the unfolded copy (random h18 / h32); ``exact_network`` says which;
- ``fast``: ``make_predictor(net, "fast", interactive=True)`` (ZoomIn 256, no flip, fused network);
- ``window``: the default mode of the widget and the CLI (``make_predictor(net, "window")``: the
  first click in a 96 px window around it, growing while the mask reaches its border, later
  clicks zoomed in, 256 px through the network), reading the image through
  ``ImageSource.windows`` as the widget does, so an 8192^2 image is never normalised whole;
- ``window_float32``: the window mode in float32, where the default runs it in bfloat16 (CPUs
  that compute bfloat16 natively);
- ``fast_onnx``: the fast mode with ONNX Runtime as the backend (when onnxruntime + onnxscript
  are installed).

Per click: wall-clock median and p90 over clicks 1-5 of every repeat (and the CPU time). "First
mask": switching to a new image = normalising it (ImageSource, as the widget does) + set_image +
click 1. Ratios are taken within this run. Then: peers (benchmarks/peers.py), peak RSS in
subprocesses, 1 vs 2 threads with and without a competing load, and fast-vs-exact NoC with the
evaluate CLI (``benchmarks/latency_extras.py``). Writes benchmarks/results/click_latency.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import latency_extras
import numpy as np
import peers
import torch
from common import REFERENCE_SETTINGS, REPO, Runner, clicks_for, random_network, synthetic_image
from reference_port import ReferencePredictor, verify

from napari_ritm.inference.clicks import Click
from napari_ritm.inference.modes import make_predictor
from napari_ritm.inference.planes import ImageSource
from napari_ritm.model.ritm_net import RITMNet
from napari_ritm.model.zoo import load_model

RESULTS = REPO / "benchmarks" / "results" / "click_latency.json"
#: the trained model that ships in the package (h18s); every other variant has random weights
TRAINED = "default"


def time_runners(runners: list[Runner], images: list[np.ndarray], repeats: int) -> dict:
    """Interleaved repeats: each runner switches to a new image and makes 5 clicks per repeat."""
    out = {r.name: {"click_wall": [], "click_cpu": [], "first_mask": [], "set_image": [],
                    "per_click": [[] for _ in range(5)]} for r in runners}
    with torch.inference_mode():
        for rep in range(repeats + 1):  # repeat 0 warms up
            image = images[rep % len(images)]
            for runner in runners:
                rec = out[runner.name]
                t0 = time.perf_counter()
                runner.new_image(image)
                t_set = time.perf_counter() - t0
                for k in range(1, 6):
                    w, c = time.perf_counter(), time.process_time()
                    runner.click(k)
                    wall, cpu = time.perf_counter() - w, time.process_time() - c
                    if rep == 0:
                        continue
                    rec["click_wall"].append(wall)
                    rec["click_cpu"].append(cpu)
                    rec["per_click"][k - 1].append(wall)
                    if k == 1:
                        rec["set_image"].append(t_set)
                        rec["first_mask"].append(t_set + wall)
    summary = {}
    for name, rec in out.items():
        summary[name] = {
            "click_median_s": float(np.median(rec["click_wall"])),
            "click_p90_s": float(np.percentile(rec["click_wall"], 90)),
            "click_cpu_median_s": float(np.median(rec["click_cpu"])),
            "per_click_median_s": [float(np.median(v)) for v in rec["per_click"]],
            "first_mask_s": float(np.median(rec["first_mask"])),
            "set_image_s": float(np.median(rec["set_image"])),
        }
    return summary


def parity(net: RITMNet, image: np.ndarray, clicks) -> dict:
    """Exact mode against the reference port, click by click, previous masks re-synchronised
    (random weights amplify a 1e-6 change of the previous mask ~30x per click)."""
    ref = ReferencePredictor(net, **REFERENCE_SETTINGS)
    ours = make_predictor(net, "exact", interactive=True)
    ref.set_input_image(image)
    ours.set_image(ImageSource(image, rgb=True).normalized(()))
    diffs, rois_equal = [], True
    with torch.inference_mode():
        for k in range(1, 6):
            want = ref.get_prediction(clicks[:k])
            got = ours.predict([Click(y, x, p) for y, x, p in clicks[:k]])
            diffs.append(float(np.abs(got - want).max()))
            rois_equal &= ours.roi == ref.zoom_in._object_roi
            ours.set_state(replace(ours.get_state(), prev_probs=want))
    return {"max_abs_prob_diff_per_click": diffs, "max": max(diffs), "rois_equal": bool(rois_equal)}


def measure_ours(args, onnx_dir: Path) -> dict:
    results = {}
    for variant in args.variants:
        net = load_model(TRAINED) if variant == TRAINED else random_network(variant)
        onnx_model = None
        if args.onnx:
            onnx_model = latency_extras.onnx_model(net, onnx_dir / f"{variant}.onnx")
        for size in args.sizes:
            images = [synthetic_image(size, seed) for seed in (1, 2)]
            clicks = clicks_for(size)
            contenders = {
                "reference": ReferencePredictor(net, **REFERENCE_SETTINGS),
                "exact": make_predictor(net, "exact", interactive=True),
                "fast": make_predictor(net, "fast", interactive=True),
                "window": make_predictor(net, "window"),
            }
            if contenders["window"].precision != "float32":  # as it was before bfloat16
                contenders["window_float32"] = make_predictor(net, "window", precision="float32")
            if onnx_model is not None:
                contenders["fast_onnx"] = make_predictor(onnx_model, "fast", interactive=True)
            runners = [Runner(name, p, clicks) for name, p in contenders.items()]
            res = time_runners(runners, images, args.repeats)
            ref = res["reference"]
            for r in res.values():
                r["ratio_click_vs_reference"] = r["click_median_s"] / ref["click_median_s"]
                r["ratio_cpu_vs_reference"] = r["click_cpu_median_s"] / ref["click_cpu_median_s"]
            res["parity_exact_vs_reference"] = parity(net, images[0], clicks)
            res["exact_network"] = {"fused": contenders["exact"].fused,
                                    "probe_change": contenders["exact"].exact_probe_change}
            results[f"{variant}_{size}"] = res
            timed = [(n, r) for n, r in res.items() if "click_median_s" in r]
            fused = "fused" if res["exact_network"]["fused"] else "unfused"
            print(f"{variant} {size}px: " + " | ".join(
                f"{n} {1000 * r['click_median_s']:.0f} ms (p90 {1000 * r['click_p90_s']:.0f}, "
                f"x{r['ratio_click_vs_reference']:.2f})" for n, r in timed)
                + f" | parity {res['parity_exact_vs_reference']['max']:.1e} (exact {fused}, "
                f"probe {res['exact_network']['probe_change']:.1e})", flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: the default model, 1024 px, 1 repeat")
    parser.add_argument("--variants", default=f"{TRAINED},h18s,h18,h32")
    parser.add_argument("--sizes", default="1024,2048,8192")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (5 clicks each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every contender")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false")
    parser.add_argument("--skip", default="", help="comma list of: peers,memory,threads,quality")
    parser.add_argument("--out", type=Path, help=f"result file (default {RESULTS.name}; "
                        "click_latency_quick.json with --quick)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # subprocess entry (latency_extras)
    args = parser.parse_args(argv)
    if args.case:
        return latency_extras.run_case(args.case)
    if args.out is None:
        args.out = RESULTS.with_name("click_latency_quick.json") if args.quick else RESULTS
    if args.quick:
        args.variants, args.sizes, args.repeats = TRAINED, "1024", 1
    args.variants = args.variants.split(",")
    args.sizes = [int(s) for s in args.sizes.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    if args.quick:
        skip |= {"threads", "quality"}
    args.onnx = args.onnx and latency_extras.onnx_available()
    torch.set_num_threads(args.threads)

    report: dict = {"environment": latency_extras.environment(args)}
    print(json.dumps(report["environment"]), flush=True)
    ref_dir = latency_extras.SHARED / "ref"
    if ref_dir.is_dir():  # the port against the official outputs (max |dp| over each run's steps)
        report["reference_port_vs_official"] = verify(ref_dir)
        print(f"reference port vs official runs: {report['reference_port_vs_official']}")
    with tempfile.TemporaryDirectory(prefix="napari-ritm-onnx-") as onnx_dir:
        report["ours"] = measure_ours(args, Path(onnx_dir))
    if "peers" not in skip:
        print("peers (random weights):", flush=True)
        images = {size: synthetic_image(size, 1) for size in args.sizes}
        report["peers"] = peers.measure_peers(images, 1 if args.quick else 2)
    if "memory" not in skip:
        report["memory"] = latency_extras.memory_cases(Path(__file__), quick=args.quick)
    if "threads" not in skip:
        report["threads"] = latency_extras.thread_study(Path(__file__))
    if "quality" not in skip:
        report["quality"] = latency_extras.quality(limit=3)
    report["targets"] = latency_extras.targets(report)
    report["environment"]["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(latency_extras.summary(report))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
