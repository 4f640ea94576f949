"""Learning curve of the default model: dev-set NoC and IoU after one click against samples seen.

Each point is a weight file of the default model's training chain and the number of training
samples behind it. Its dev-set figures come from eval_dev.py's protocol (window mode, the val
images of the committed split, 20 clicks, stop at IoU 0.90) without mirror averaging, as the
window mode ran while these weights were trained (and at half the cost): taken from an
eval_dev-format results file (``--evals``, the run "<weights> (no flip)") when it holds them,
else evaluated with ``eval_dev.py --no-flip`` into the first ``--evals`` file. ``--flip`` takes
the runs with mirror averaging instead (named "<weights>"), as the default model is used since
v2.1; ``--subset`` is the images a missing run is evaluated on (a half of the val images where
the evals file holds one). Writes ``benchmarks/results/learning_curve.json`` (``--out``; per
point: samples, phase, per-set NoC@85 / NoC@90 / IoU after one click and the commands; per set
and metric a fit) and a .png beside it (one panel per metric, one line per set, the targets of
issue 15 or 38 (``--targets``) dashed).

``--paired`` adds to each point given by ``--point`` the change per set from the point before
it in its phase, on the same objects (NoC@90 and the IoU after one click, mean and standard
error): whether a stretch of training moved a set beyond the noise of the objects drawn.

The fit: per set and metric, a least-squares line against log2(samples) over the points of
``--fit-phase`` (one learning rate, one recipe), giving the change per doubling of the samples
(± its standard error) and, for a target not met whose line heads toward it by more than two
standard errors, the samples at which the line would reach it (from the phase's last point; a
straight line in log2(samples) is an assumption the points support only over their range).

    python benchmarks/learning_curve.py --evals benchmarks/results/eval_dev.json \\
        --point 36000 v1 "default v1" --point 164000 "v2, lr 5e-4" runs/lc/mean_13k_16k.pth ...
    python benchmarks/learning_curve.py --keep-points --point 712000 "a new phase" new.pth
    python benchmarks/learning_curve.py --flip --targets 38 --subset val_select \
        --evals benchmarks/results/eval_dev_val_select.json --out ... --point ...
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from common import RESULTS, machine, paired_noc
from eval_dev import SETS
from eval_dev import main as eval_dev
from scipy.stats import linregress

from napari_ritm.evaluation.noc import miou_per_click

#: the targets of issue 15 (the first dev sets) and of issue 38 (every microscopy set, the
#: report halves): issue -> metric -> {set: (target, "min" or "max")}
NUCLEI = ("dsb2018", "coelho_nuclei", "stardist_nuclei2d")
OTHERS = ("isbi2012_em", "usiigaci_phase", "emps_particles")
NUCLEI_38 = (*NUCLEI, "bitdepth_nuclei")
OTHERS_38 = (*OTHERS, "axondeepseg_sem")
TARGETS = {
    "15": {
        "IoU@1": {**{s: (0.80, "min") for s in NUCLEI}, **{s: (0.70, "min") for s in OTHERS}},
        "NoC@85": {s: (3.0, "max") for s in NUCLEI},
        "NoC@90": {**{s: (6.0, "max") for s in NUCLEI}, **{s: (8.0, "max") for s in OTHERS}},
    },
    "38": {
        "IoU@1": {**{s: (0.80, "min") for s in NUCLEI_38},
                  **{s: (0.75, "min") for s in OTHERS_38}},
        "NoC@85": {},
        "NoC@90": {**{s: (4.0, "max") for s in NUCLEI_38},
                   **{s: (6.0, "max") for s in OTHERS_38}},
    },
}
METRICS = ("IoU@1", "NoC@85", "NoC@90")


def summarise(run: dict) -> dict:
    """Per set of an eval_dev run: NoC@85, NoC@90, mean IoU after one click, objects."""
    out = {}
    for name, d in run["datasets"].items():
        iou1 = float(miou_per_click([s["ious"] for s in d["samples"]])[0])
        out[name] = {"NoC@85": round(d["NoC@85"], 3), "NoC@90": round(d["NoC@90"], 3),
                     "IoU@1": round(iou1, 4), "objects": d["objects"]}
    return out


def paired_change(run: dict, base: dict) -> dict:
    """Per set, on the objects both eval_dev runs measured: the change from ``base`` to ``run``
    of NoC@90 and of the IoU after one click, each as mean and standard error over the
    objects (paired: the same objects, so the noise of which objects were drawn cancels)."""
    out = {}
    for name, d in run["datasets"].items():
        old = {(s["image"], s["label"]): s["ious"]
               for s in base["datasets"].get(name, {}).get("samples", [])}
        pairs = [(s["ious"], old[key]) for s in d["samples"]
                 if (key := (s["image"], s["label"])) in old]
        if len(pairs) < 2:
            continue
        new_ious, old_ious = zip(*pairs)
        first = np.array([a[0] - b[0] for a, b in pairs])
        out[name] = {"objects": len(pairs),
                     "NoC@90": paired_noc(list(new_ious), list(old_ious), (0.90,))["NoC@90"],
                     "IoU@1": {"mean": float(first.mean()),
                               "se": float(first.std(ddof=1) / np.sqrt(len(first)))}}
    return out


def fit_line(samples: list[int], values: list[float], target: tuple[float, str] | None) -> dict:
    """Least squares ``value = a + b log2(samples)``; b per doubling with its standard error,
    and where a target not met is approached, the samples at which the line reaches it."""
    x, y = np.log2(np.asarray(samples, float)), np.asarray(values, float)
    line = linregress(x, y)
    a, b, se = line.intercept, line.slope, line.stderr
    resid = y - (a + b * x)
    fit = {"points": len(x), "per_doubling": round(float(b), 4), "se": round(float(se), 4),
           "residual_sd": round(float(resid.std(ddof=2)), 4),
           "at_last": round(float(a + b * x[-1]), 4)}
    if target is not None:
        level, sense = target
        met = fit["at_last"] >= level if sense == "min" else fit["at_last"] <= level
        toward = (b > 0 if sense == "min" else b < 0) and abs(b) > 2 * se
        fit["target"] = level
        if met:
            fit["reaches_target_at"] = "met"
        elif toward:
            doublings = (level - fit["at_last"]) / b
            fit["reaches_target_at"] = int(round(samples[-1] * 2 ** doublings, -3))
        else:
            fit["reaches_target_at"] = "no trend toward it (slope within 2 s.e. or away)"
    return fit


def plot(points: list[dict], path: Path, targets: dict, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig = Figure(figsize=(13, 5.6), dpi=110)
    FigureCanvasAgg(fig)
    phases = list(dict.fromkeys(p["phase"] for p in points))
    # one marker per phase, repeating after 12
    markers = dict(zip(phases, itertools.cycle("osD^vP*Xh<>p")))
    colours = {name: f"C{i}" for i, name in enumerate(SETS)}
    for k, metric in enumerate(METRICS):
        ax = fig.add_subplot(1, len(METRICS), k + 1)
        for name in SETS:
            pts = [p for p in points if name in p["sets"]]
            ax.plot([p["samples"] for p in pts], [p["sets"][name][metric] for p in pts],
                    color=colours[name], lw=0.8, alpha=0.6, label=name if k == 0 else None)
            for phase in phases:
                sub = [p for p in pts if p["phase"] == phase]
                ax.scatter([p["samples"] for p in sub], [p["sets"][name][metric] for p in sub],
                           color=colours[name], marker=markers[phase], s=16)
        for level in sorted({t for t, _ in targets[metric].values()}):
            names = [n for n, (t, _) in targets[metric].items() if t == level]
            ax.axhline(level, color="0.4", ls="--", lw=0.8)
            ax.annotate("target: " + ", ".join(n.split("_")[0] for n in names), (0.01, level),
                        xycoords=("axes fraction", "data"), fontsize="x-small", color="0.3",
                        va="bottom")
        ax.set(xscale="log", xlabel="training samples seen", title=metric)
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 4)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
    # the phases below the panels, where they hide no points however many there are
    handles = [fig.axes[-1].scatter([], [], color="0.3", marker=markers[p]) for p in phases]
    ncol = 3 if max(map(len, phases)) <= 60 else 1  # long phase names a row each
    fig.legend(handles, phases, loc="lower center", ncol=ncol, fontsize="x-small",
               frameon=False)
    fig.axes[0].legend(fontsize="x-small", loc="lower right")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05 + 0.025 * -(-len(phases) // ncol), 1, 1))
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--point", nargs=3, action="append", default=[],
                        metavar=("SAMPLES", "PHASE", "WEIGHTS"),
                        help="samples seen, phase label, weights (a path or a model name)")
    parser.add_argument("--keep-points", action="store_true",
                        help="keep the points of the results file already at --out, with the "
                             "figures it records (their weights need not exist any more); "
                             "--point adds to them or replaces the point of the same weights")
    parser.add_argument("--evals", type=Path, nargs="+", default=[RESULTS / "eval_dev.json"],
                        help="eval_dev-format files to take runs from; missing runs are "
                             "evaluated into the first one")
    parser.add_argument("--flip", action="store_true",
                        help="the runs with mirror averaging (named '<weights>') instead of the "
                             "'(no flip)' ones")
    parser.add_argument("--subset", choices=("val", "val_select", "val_report"), default="val",
                        help="the images a missing run is evaluated on")
    parser.add_argument("--targets", choices=sorted(TARGETS), default="15",
                        help="the issue whose targets the fits and the plot use")
    parser.add_argument("--paired", action="store_true",
                        help="for each point given by --point, also the paired change per set "
                             "from the point before it in its phase (NoC@90, IoU after one "
                             "click; mean and standard error over the same objects)")
    parser.add_argument("--fit-phase", help="phase whose points give the fit (default: the "
                                            "phase with the most points)")
    parser.add_argument("--out", type=Path, default=RESULTS / "learning_curve.json")
    args = parser.parse_args(argv)

    def known() -> dict:
        runs = {}
        for path in args.evals:
            if path.is_file():
                runs |= {r["model"]: r for r in json.loads(path.read_text())["runs"]
                         if r["mode"] == "window"}
        return runs

    kept = {}
    if args.keep_points and args.out.is_file():
        kept = {p["weights"]: p for p in json.loads(args.out.read_text())["points"]}
    for _, _, weights in args.point:
        kept.pop(weights, None)
    if not (args.point or kept):
        parser.error("no points: give --point, or --keep-points with an earlier results file")

    def run_name(weights: str) -> str:
        return weights if args.flip else f"{weights} (no flip)"

    missing = [w for _, _, w in args.point if run_name(w) not in known()]
    no_flip = [] if args.flip else ["--no-flip"]
    if missing and eval_dev(["--models", *missing, *no_flip, "--subset", args.subset,
                             "--out", str(args.evals[0])]):
        return 1
    runs = known()
    points = list(kept.values())
    given = {}  # weights -> its eval_dev run, for the points given by --point
    for samples, phase, weights in args.point:
        run = given[weights] = runs.get(run_name(weights))
        if run is None:
            print(f"no evaluation of {weights}", file=sys.stderr)
            return 1
        points.append({"samples": int(samples), "phase": phase, "weights": weights,
                       "sets": summarise(run), "commands": run["commands"]})
    points.sort(key=lambda p: p["samples"])
    phases = [p["phase"] for p in points]
    fit_phase = args.fit_phase or max(dict.fromkeys(phases), key=phases.count)
    fitted = [p for p in points if p["phase"] == fit_phase]
    targets = TARGETS[args.targets]
    for phase in dict.fromkeys(phases) if args.paired else ():
        ours = [p for p in points if p["phase"] == phase and p["weights"] in given]
        for before, after in itertools.pairwise(ours):
            after["paired_change"] = {
                "from": before["weights"],
                "sets": paired_change(given[after["weights"]], given[before["weights"]])}
    fits = {}
    for name in SETS:  # a line through three points at least
        pts = [p for p in fitted if name in p["sets"]]
        if len(pts) >= 3:
            fits[name] = {m: fit_line([p["samples"] for p in pts],
                                      [p["sets"][name][m] for p in pts], targets[m].get(name))
                          for m in METRICS}
    protocol = (f"eval_dev.py{'' if args.flip else ' --no-flip'}, window mode, "
                f"{args.subset} images")
    result = {"benchmark": "learning_curve", "protocol": protocol, "targets": targets,
              "targets_of_issue": args.targets, "fit_phase": fit_phase, "fits": fits,
              "points": points, "machine": machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    plot(points, args.out.with_suffix(".png"), targets,
         f"default model, {protocol}; dashed: issue {args.targets}'s targets")
    for name, per_metric in fits.items():
        cells = [f"{m} {f['at_last']:.2f} {f['per_doubling']:+.3f}±{f['se']:.3f}/doubling"
                 f" -> {f.get('reaches_target_at', '-')}" for m, f in per_metric.items()]
        print(f"{name:18s} " + " | ".join(cells))
    for p in points:
        for name, c in p.get("paired_change", {}).get("sets", {}).items():
            print(f"{p['weights']} vs {p['paired_change']['from']} {name:18s} NoC@90 "
                  f"{c['NoC@90']['mean']:+.2f}±{c['NoC@90']['se']:.2f} IoU@1 "
                  f"{c['IoU@1']['mean']:+.3f}±{c['IoU@1']['se']:.3f} ({c['objects']})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
