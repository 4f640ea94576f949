"""Validation during training: the loss on fixed validation crops and the NoC on a few objects.

The NoC uses the evaluation protocol of :mod:`napari_ritm.evaluation.noc` (simulated clicks with
the official next-click rule, up to 20 clicks, stop at IoU 0.90) on whole validation images,
with the predictor mode the run validates (``TrainOptions.val_mode``: the widget's window mode
by default), so its numbers are comparable with ``napari-ritm evaluate --mode`` of that mode.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch.utils.data import DataLoader

from napari_ritm.evaluation.noc import evaluate_sample, noc
from napari_ritm.inference.modes import make_predictor
from napari_ritm.training.data import ClickDataset, LabeledImage
from napari_ritm.training.iterative import simulate_previous_clicks
from napari_ritm.training.losses import RITMLoss


def pick_objects(
    samples: list[LabeledImage], count: int, min_area: int = 50
) -> list[tuple[int, int]]:
    """About ``count`` (image index, instance id) pairs, the same number from each set, spread
    evenly over each set's objects of at least ``min_area`` pixels, in image then id order
    (deterministic)."""
    by_set: dict[str, list[tuple[int, int]]] = {}
    for i, s in enumerate(samples):
        ids, areas = np.unique(s.labels[s.labels > 0], return_counts=True)
        by_set.setdefault(s.set_name, []).extend((i, int(k)) for k in ids[areas >= min_area])
    found = [pairs for pairs in by_set.values() if pairs]
    if count <= 0 or not found:
        return []
    per_set = max(1, -(-count // len(found)))
    out = []
    for pairs in found:
        picks = np.unique(np.linspace(0, len(pairs) - 1, min(per_set, len(pairs))).round())
        out.extend(pairs[int(j)] for j in picks)
    return sorted(out)


@torch.no_grad()
def validation_loss(
    net: torch.nn.Module,
    dataset: ClickDataset,
    *,
    batch_size: int,
    device: torch.device,
    max_num_next_clicks: int,
    rng: np.random.Generator,
    autocast=None,
) -> float:
    """Mean training objective over ``dataset`` with ``net`` in eval mode (restored afterwards)."""
    loss_fn = RITMLoss()
    was_training = net.training
    net.eval()
    total, count = 0.0, 0
    try:
        for batch in DataLoader(dataset, batch_size=batch_size):
            image, points, gt = (batch[k].to(device) for k in ("image", "points", "gt"))
            with autocast() if autocast else contextlib.nullcontext():
                prev, points, _ = simulate_previous_clicks(
                    net,
                    image,
                    points,
                    gt,
                    max_num_next_clicks=max_num_next_clicks,
                    rng=rng,
                    with_prev_mask=net.variant.with_prev_mask,
                )
                output = net(image, points, prev if net.variant.with_prev_mask else None)
                loss, _ = loss_fn(output, gt)
            total += loss.item() * len(image)
            count += len(image)
    finally:
        net.train(was_training)
    return total / max(count, 1)


def validation_noc(
    net: torch.nn.Module,
    samples: list[LabeledImage],
    objects: list[tuple[int, int]],
    *,
    max_clicks: int = 20,
    mode: str = "window",
) -> dict[str, float]:
    """Mean NoC@85/90 and IoU after the first click over ``objects`` of ``samples``, with the
    predictor of ``mode`` without mirror averaging (half the cost, and the learning curves of
    runs from before the window mode mirrored stay comparable)."""
    was_training = net.training
    net.eval()
    ious = []
    try:
        predictor = make_predictor(net, mode, flip=False)
        current = None
        for index, label in objects:
            sample = samples[index]
            image = sample.image.astype(np.float32) / np.float32(255)
            gt = (sample.labels == label).astype(np.int32)
            result = evaluate_sample(
                predictor, image, gt, max_clicks=max_clicks, new_image=index != current
            )
            current = index
            ious.append(result.ious)
    finally:
        net.train(was_training)
    return {
        "val_noc85": float(np.mean([noc(s, 0.85, max_clicks) for s in ious])),
        "val_noc90": float(np.mean([noc(s, 0.90, max_clicks) for s in ious])),
        "val_iou1": float(np.mean([s[0] for s in ious])),
        "val_objects": len(ious),
    }


def validate(run, rng: np.random.Generator) -> dict[str, float]:
    """Validation loss and NoC for a :class:`~napari_ritm.training.trainer.Trainer` ``run`` (its
    plain network, options and validation data): val_loss, val_noc85, val_noc90, val_iou1,
    val_objects."""
    out: dict[str, float] = {}
    if run.val_set is not None:
        out["val_loss"] = round(
            validation_loss(
                run.net,
                run.val_set,
                batch_size=run.local_batch,
                device=run.ctx.device,
                max_num_next_clicks=run.o.max_num_next_clicks,
                rng=rng,
                autocast=run.autocast,
            ),
            6,
        )
    objects = pick_objects(run.val_samples, run.o.val_objects)
    if objects:
        out.update(
            validation_noc(
                run.net,
                run.val_samples,
                objects,
                max_clicks=run.o.val_max_clicks,
                mode=run.o.val_mode,
            )
        )
    return out
