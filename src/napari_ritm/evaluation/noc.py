"""The NoC protocol of the RITM paper: simulated clicks until the IoU target, and its metrics.

Per sample (as the official ``evaluate_sample``): start from an empty prediction; repeat up to
``max_clicks`` times: the :class:`~napari_ritm.evaluation.clicker.Clicker` places the next click,
the predictor predicts with all clicks so far, the prediction is ``probs > pred_thresh`` (0.49),
and the IoU (ignoring ``-1`` pixels) is recorded; stop once IoU >= ``stop_iou`` (0.90; ``None``
runs every click). NoC@t is the first 1-based click with IoU >= t, or ``max_clicks`` when never
reached; NoF@t counts the samples whose NoC@t equals ``max_clicks`` (as the official
``compute_noc_metric`` does, so reaching t exactly at the last click also counts as a failure).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from napari_ritm.evaluation.clicker import Clicker
from napari_ritm.evaluation.datasets import Sample
from napari_ritm.inference.clicks import DEFAULT_THRESHOLD, Click

__all__ = [
    "ClickPredictor",
    "DatasetResult",
    "SampleResult",
    "evaluate_dataset",
    "evaluate_sample",
    "get_iou",
    "miou_per_click",
    "noc",
    "summarize",
]

NOC_THRESHOLDS = (0.80, 0.85, 0.90)
NOF_THRESHOLDS = (0.85, 0.90)


class ClickPredictor(Protocol):
    """Anything the loop can drive: the RITM Predictor or a classic baseline.

    ``set_image(image)`` takes (H, W, 3) float32 RGB in [0, 1]; ``predict(clicks)`` returns
    (H, W) float32 probabilities for all clicks so far; ``reset()`` forgets the clicks and any
    previous mask, keeping the image.
    """

    def set_image(self, image: np.ndarray) -> None: ...

    def predict(self, clicks: Sequence[Click]) -> np.ndarray: ...

    def reset(self) -> None: ...


@dataclass
class SampleResult:
    """The outcome of one sample: ``ious`` (float32 values, one per click), the ``clicks``,
    ``seconds`` spent in the predictor (set_image/reset and every predict), the final ``probs``
    (H, W) float32."""

    ious: list[float]
    clicks: list[Click]
    seconds: float
    probs: np.ndarray
    start_iou: float | None = None  # the initial mask's IoU, when it started from one


def get_iou(gt: np.ndarray, pred: np.ndarray, ignore_label: int = -1) -> float:
    """IoU of the boolean ``pred`` with ``gt == 1``, over pixels where ``gt != ignore_label``."""
    valid = gt != ignore_label
    obj = gt == 1
    intersection = np.count_nonzero(pred & obj & valid)
    union = np.count_nonzero((pred | obj) & valid)
    return intersection / union if union else 1.0


def evaluate_sample(
    predictor: ClickPredictor,
    image: np.ndarray,
    gt: np.ndarray,
    *,
    max_clicks: int = 20,
    stop_iou: float | None = 0.90,
    pred_thresh: float = DEFAULT_THRESHOLD,
    new_image: bool = True,
    init_mask: np.ndarray | None = None,
) -> SampleResult:
    """Run the click loop on one object. ``new_image=False`` reuses the image already set on the
    predictor (only its clicks are reset). ``init_mask`` ((H, W) bool): start from that mask, as
    when refining an existing label: the first click goes to its largest error, and it is the
    predictor's previous mask (as the session passes a label being refined)."""
    clicker = Clicker(gt)
    pred = np.zeros(gt.shape, dtype=bool) if init_mask is None else init_mask.astype(bool)
    prev = None if init_mask is None else init_mask.astype(np.float32)
    ious: list[float] = []
    start = time.perf_counter()
    if new_image:
        predictor.set_image(image)
    else:
        predictor.reset()
    seconds = time.perf_counter() - start
    probs = np.zeros(gt.shape, dtype=np.float32)
    for _ in range(max_clicks):
        clicker.next_click(pred)
        start = time.perf_counter()
        probs = (predictor.predict(list(clicker.clicks)) if prev is None
                 else predictor.predict(list(clicker.clicks), prev))
        seconds += time.perf_counter() - start
        pred = probs > pred_thresh
        iou = get_iou(gt, pred)
        ious.append(float(np.float32(iou)))
        if stop_iou is not None and iou >= stop_iou:
            break
    start = None if init_mask is None else float(get_iou(gt, init_mask.astype(bool)))
    return SampleResult(ious=ious, clicks=list(clicker.clicks), seconds=seconds, probs=probs,
                        start_iou=start)


def noc(ious: Sequence[float], threshold: float, max_clicks: int = 20) -> int:
    """The first 1-based click whose IoU reaches ``threshold``, else ``max_clicks``."""
    reached = np.flatnonzero(np.asarray(ious, dtype=np.float32) >= threshold)
    return int(reached[0]) + 1 if reached.size else max_clicks


def miou_per_click(all_ious: Sequence[Sequence[float]], max_clicks: int = 20) -> np.ndarray:
    """Mean IoU after clicks 1..max_clicks, shape (max_clicks,); a sample that stopped early keeps
    its last IoU (the user stopped clicking because the object was good enough)."""
    if not all_ious:
        return np.zeros(0)
    table = np.array([list(s) + [s[-1]] * (max_clicks - len(s)) for s in all_ious], dtype=float)
    return table.mean(axis=0)


def summarize(all_ious: Sequence[Sequence[float]], max_clicks: int = 20) -> dict[str, float]:
    """``NoC@80/85/90`` (means) and ``NoF@85/90`` (counts) of a list of per-sample IoU lists."""
    out: dict[str, float] = {}
    for thr in NOC_THRESHOLDS:
        nocs = [noc(s, thr, max_clicks) for s in all_ious]
        out[f"NoC@{round(thr * 100)}"] = float(np.mean(nocs)) if nocs else float("nan")
        if thr in NOF_THRESHOLDS:
            out[f"NoF@{round(thr * 100)}"] = int(sum(n == max_clicks for n in nocs))
    return out


@dataclass
class DatasetResult:
    """Results of one dataset as they accumulate: per-sample records and timing."""

    name: str
    max_clicks: int = 20
    samples: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    clicks: int = 0

    def add(self, sample: Sample, result: SampleResult) -> None:
        """Append one evaluated sample."""
        record: dict = {"image": sample.image_name, "label": sample.label, "ious": result.ious}
        if result.start_iou is not None:
            record["start_iou"] = result.start_iou
        if sample.slice is not None:
            record["slice"] = sample.slice
        self.samples.append(record)
        self.seconds += result.seconds
        self.clicks += len(result.ious)

    def to_json(self) -> dict:
        """The JSON entry of this dataset (see the ``evaluate`` command)."""
        all_ious = [s["ious"] for s in self.samples]
        starts = [s["start_iou"] for s in self.samples if "start_iou" in s]
        return {
            "objects": len(self.samples),
            **({"start_iou": float(np.mean(starts))} if starts else {}),
            **summarize(all_ious, self.max_clicks),
            "s_per_click": self.seconds / self.clicks if self.clicks else float("nan"),
            "samples": self.samples,
        }


def evaluate_dataset(
    predictor: ClickPredictor,
    samples: Iterable[Sample],
    result: DatasetResult,
    *,
    stop_iou: float | None = 0.90,
    pred_thresh: float = DEFAULT_THRESHOLD,
    on_sample: Callable[[Sample, SampleResult], None] | None = None,
    init_for: Callable[[Sample], np.ndarray | None] | None = None,
) -> DatasetResult:
    """Evaluate every sample into ``result`` (filled in place, so an interruption keeps what was
    done); ``on_sample`` is called after each one (progress bars, incremental saving).
    ``init_for(sample)``: the initial mask to refine ((H, W) bool), or None to leave the sample
    out (refining needs a label to start from)."""
    previous = None
    for sample in samples:
        init = init_for(sample) if init_for is not None else None
        if init_for is not None and init is None:
            continue
        out = evaluate_sample(
            predictor,
            sample.image,
            sample.gt,
            max_clicks=result.max_clicks,
            stop_iou=stop_iou,
            pred_thresh=pred_thresh,
            new_image=sample.image is not previous,
            init_mask=init,
        )
        previous = sample.image
        result.add(sample, out)
        if on_sample is not None:
            on_sample(sample, out)
    return result
