"""The parts of click_latency.py that run in subprocesses or summarise: peak memory, thread
settings under a competing load, fast-vs-exact NoC via the evaluate CLI, targets and the summary.

Subprocess cases are ``click_latency.py --case NAME`` (one fresh process each, so that peak RSS
and OpenMP's wait policy are the case's own); each prints one JSON line.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import REPO, SHARED

FAKE_H18S = SHARED / "ref" / "checkpoints" / "fake_coco_lvis_h18s_itermask.pth"
DEV_SETS = ("blobs", "dsb2018", "isbi2012_em", "stardist_nuclei2d", "weizmann_horse")


def environment(args) -> dict:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
               platform.processor())
    env = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "loadavg_start": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M"),
           "quick": bool(args.quick), "repeats": args.repeats,
           "reference_port": "benchmarks/reference_port: official NoBRS predictor ported "
                             "plainly; network = napari_ritm RITMNet run the plain way (float32, "
                             "BN unfused, full OCR attention, aux output upsampled) under "
                             "torch.no_grad()"}
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        env["onnxruntime"] = None
    return env


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_model(net, path: Path):
    """Export ``net`` to ``path`` (timed) and open it with ONNX Runtime (1 thread)."""
    from napari_ritm.model.onnx_backend import OnnxRITM, export_onnx

    t = time.perf_counter()
    export_onnx(net, path)
    print(f"  exported {path.name} in {time.perf_counter() - t:.0f} s", flush=True)
    return OnnxRITM(path, threads=torch.get_num_threads())


# -- subprocess cases ------------------------------------------------------------------------

def _rss_mb() -> float:
    """Peak RSS of this process in MB: VmHWM, the high-water mark of this process's own memory.
    (getrusage's ru_maxrss is kept across fork + exec on Linux, so a case started by a big parent
    would report the parent's peak; it is used only where /proc is missing.)"""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _clicks(size: int):
    from napari_ritm.inference.clicks import Click

    c = size / 2
    spots = [(c, c, True), (c + 0.04 * size, c - 0.03 * size, True),
             (c - 0.1 * size, c + 0.06 * size, False), (c + 0.01 * size, c + 0.09 * size, True),
             (size / 3, size / 3, False)]
    return [Click(y, x, p) for y, x, p in spots]


def _plane(seed: int, size: int) -> np.ndarray:
    """A (size, size) uint16 plane grown from a small one (no full-size float temporaries)."""
    rng = np.random.default_rng(seed)
    small = (rng.random((size // 16, size // 16)) * 4000 + 200).astype(np.uint16)
    return np.repeat(np.repeat(small, 16, axis=0), 16, axis=1)


def _memory_case(kind: str) -> dict:
    from napari_ritm.inference.modes import make_predictor
    from napari_ritm.inference.planes import ImageSource
    from napari_ritm.model.ritm_net import RITMNet

    torch.set_num_threads(1)
    net = RITMNet(18, 48, small=True).eval()
    predictors = [make_predictor(net, mode, interactive=True)
                  for mode in ("exact", "fast")]
    if kind == "image4096":
        source, keys, size = ImageSource(_plane(0, 4096)), [()], 4096
    else:  # a 100 x 2048 x 2048 uint16 dask stack, generated lazily slice by slice
        import dask.array as da

        size = 2048
        stack = da.map_blocks(lambda block_info=None: _plane(
            block_info[None]["chunk-location"][0], size)[None], dtype=np.uint16,
            chunks=((1,) * 100, (size,), (size,)), meta=np.empty((0, 0, 0), np.uint16))
        source, keys = ImageSource(stack), [(0,), (50,), (99,)]
    baseline = _rss_mb()
    with torch.inference_mode():
        for key in keys:
            plane = source.normalized(key)
            for predictor in predictors:
                predictor.set_image(plane)
                for k in range(1, 6):
                    probs = predictor.predict(_clicks(size)[:k])
            del plane, probs
    return {"case": kind, "peak_rss_mb": round(_rss_mb(), 1),
            "rss_after_imports_and_model_mb": round(baseline, 1)}


def _thread_case(threads: int) -> dict:
    """Reference port, exact and fast clicks (h18s, 1024 px) at ``threads`` torch threads."""
    from common import REFERENCE_SETTINGS, Runner, random_network, synthetic_image
    from reference_port import ReferencePredictor

    from napari_ritm.inference.modes import make_predictor

    torch.set_num_threads(threads)
    net = random_network("h18s")
    image = synthetic_image(1024, 1)
    clicks = [(c.y, c.x, c.positive) for c in _clicks(1024)]
    contenders = {"reference": ReferencePredictor(net, **REFERENCE_SETTINGS),
                  "exact": make_predictor(net, "exact", interactive=True),
                  "fast": make_predictor(net, "fast", interactive=True)}
    out = {}
    with torch.inference_mode():
        for name, predictor in contenders.items():
            runner, times = Runner(name, predictor, clicks), []
            for rep in range(3):  # the first click of repeat 0 warms up
                runner.new_image(image)
                for k in range(1, 6):
                    t = time.perf_counter()
                    runner.click(k)
                    if rep or k > 1:
                        times.append(time.perf_counter() - t)
            out[name] = {"click_median_s": float(np.median(times)),
                         "click_p90_s": float(np.percentile(times, 90))}
    return out


def run_case(case: str) -> int:
    kind, _, arg = case.partition(":")
    result = _memory_case(arg) if kind == "memory" else _thread_case(int(arg))
    print(json.dumps(result))
    return 0


def _subprocess(script: Path, case: str, env: dict | None = None, timeout: float = 600) -> dict:
    cmd = [sys.executable, str(script), "--case", case]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory_cases(script: Path, quick: bool) -> dict:
    out = {}
    for kind in ("image4096", "stack100x2048"):
        out[kind] = _subprocess(script, f"memory:{kind}")
        print(f"memory {kind}: {out[kind]}", flush=True)
    return out


def thread_study(script: Path) -> dict:
    """h18s, 1024 px: reference-port, exact and fast clicks with 1 or 2 torch threads (2 also
    with OMP_WAIT_POLICY=PASSIVE), on the machine as it is and with one extra busy process.
    The official code runs with torch's default: 2 threads here, default wait policy."""
    cases = {"1": ("1", {}), "2": ("2", {}), "2_passive": ("2", {"OMP_WAIT_POLICY": "PASSIVE"})}
    out = {"loadavg_start": os.getloadavg()}
    for load in ("no_extra_load", "one_busy_process"):
        hog = None
        if load == "one_busy_process":
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for name, (threads, env) in cases.items():
                res = _subprocess(script, f"threads:{threads}", env, timeout=420)
                out[f"{load}/{name}"] = res
                print(f"threads {load} {name}: {res}", flush=True)
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    return out


def quality(limit: int) -> dict:
    """NoC of the fake h18s checkpoint in exact and fast mode on each dev set (evaluate CLI)."""
    if not FAKE_H18S.exists():
        return {"skipped": f"{FAKE_H18S} not found"}
    out = {"model": f"{FAKE_H18S.name} (random weights: NoC is no quality figure)",
           "limit_objects_per_set": limit}
    for mode in ("exact", "fast"):
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "noc.json"
            cmd = [sys.executable, "-m", "napari_ritm.cli", "evaluate", "--model", str(FAKE_H18S),
                   "--mode", mode, "--limit", str(limit), "--json", str(report)]
            for name in DEV_SETS:
                cmd += ["--data", str(SHARED / "data" / name)]
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
            if proc.returncode:
                out[mode] = {"error": proc.stderr.strip().splitlines()[-3:]}
                continue
            data = json.loads(report.read_text())["datasets"]
            out[mode] = {name: {k: v for k, v in d.items() if not isinstance(v, (list, dict))}
                         for name, d in data.items()}
            out[mode]["note"] = "random weights never reach IoU 0.85: NoC = max clicks"
            out[mode]["wall_s"] = round(time.perf_counter() - t, 1)
        print(f"quality {mode}: {out[mode]}", flush=True)
    return out


# -- targets and summary ---------------------------------------------------------------------

def targets(report: dict) -> dict:
    ours, peer = report["ours"], report.get("peers", {})
    t: dict = {"exact_click_le_0.5x_reference": {}, "fast_click_le_0.2x_reference_exact": {}}
    for case, res in ours.items():
        exact = res["exact"]["ratio_click_vs_reference"]
        t["exact_click_le_0.5x_reference"][case] = round(exact, 3)
        best = min(res[m]["ratio_click_vs_reference"] for m in ("fast", "fast_onnx") if m in res)
        t["fast_click_le_0.2x_reference_exact"][case] = round(best, 3)
    vit = peer.get("sam_vit_b", {})
    light = {k: peer[k] for k in ("mobile_sam", "efficientvit_sam_l0")
             if isinstance(peer.get(k), dict) and "skipped" not in peer[k]}
    for case, res in ours.items():
        size = case.split("_")[1]
        for mode in ("exact", "fast"):
            ours_first = res[mode]["first_mask_s"]
            if size in vit:
                t.setdefault(f"first_mask_{mode}_vs_vit_b_encoder_ge_30x", {})[case] = round(
                    vit[size]["encoder_s"] / ours_first, 1)
            if light and all(size in v for v in light.values()):
                fastest = min(v[size]["encoder_s"] for v in light.values())
                t.setdefault(f"first_mask_{mode}_vs_fastest_light_encoder_ge_3x", {})[case] = round(
                    fastest / ours_first, 2)
        if size in vit:
            fast = min(res[m]["click_median_s"] for m in ("fast", "fast_onnx") if m in res)
            t.setdefault("fast_click_le_1.5x_sam_decoder_click", {})[case] = round(
                fast / vit[size]["click_median_s"], 2)
    mem = report.get("memory", {})
    t["peak_rss_lt_1500_mb"] = {k: v.get("peak_rss_mb") for k, v in mem.items()}
    return t


def summary(report: dict) -> str:
    lines = ["", "case        mode        click median   p90      cpu     x ref   first mask"]
    for case, res in report["ours"].items():
        for mode, r in res.items():
            if "click_median_s" in r:
                lines.append(f"{case:<11} {mode:<11} {1000 * r['click_median_s']:8.0f} ms "
                             f"{1000 * r['click_p90_s']:6.0f} ms "
                             f"{1000 * r['click_cpu_median_s']:6.0f} ms  "
                             f"{r['ratio_click_vs_reference']:5.2f}  {r['first_mask_s']:7.3f} s")
        lines.append(f"{case:<11} parity exact vs reference: max |dp| "
                     f"{res['parity_exact_vs_reference']['max']:.1e}")
    lines.append("targets: " + json.dumps(report["targets"], indent=1))
    return "\n".join(lines)
