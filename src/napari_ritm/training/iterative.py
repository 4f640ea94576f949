"""The mask-guided iterative training loop of RITM.

Before the gradient step, each batch runs 0..``max_num_next_clicks`` extra forward passes without
gradients (network in eval mode). After each pass one click is added per image where the
prediction is most wrong, and the predicted probabilities become the next previous-mask input.
The final, trained forward pass then sees realistic clicks and a realistic previous mask.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn


def next_click_points(
    probs: torch.Tensor,
    gt: torch.Tensor,
    points: torch.Tensor,
    click_index: int,
    rng: np.random.Generator,
    *,
    pred_thresh: float = 0.49,
) -> torch.Tensor:
    """Add one corrective click per image; returns a new points tensor.

    probs (B, 1, H, W) probabilities; gt (B, 1, H, W) with 1 = object, 0 = background, -1 = ignore;
    points (B, 2N, 3) rows (y, x, index), positives first. The click goes to the error region
    (false negatives vs false positives) whose exact Euclidean distance to its border is larger
    (ties give a negative click), at a pixel drawn uniformly among those farther than half that
    maximum distance. It overwrites row ``N - click_index`` (positive) or ``2N - click_index``
    (negative), the tail of each half, which the sampler leaves as padding in practice.
    Images without any error get no click. Ignored pixels never count as errors.
    """
    if click_index < 1:
        raise ValueError("click_index starts at 1")
    pred = probs.detach().float().cpu().numpy()[:, 0]
    target = gt.detach().cpu().numpy()[:, 0]
    valid = target != -1
    is_object = target > 0.5
    fn = is_object & (pred < pred_thresh) & valid
    fp = ~is_object & (pred > pred_thresh) & valid
    num = points.shape[1] // 2
    out = points.clone()
    for b in range(pred.shape[0]):
        fn_dt = _padded_edt(fn[b])
        fp_dt = _padded_edt(fp[b])
        fn_max, fp_max = fn_dt.max(), fp_dt.max()
        positive = fn_max > fp_max
        dt = fn_dt if positive else fp_dt
        candidates = np.argwhere(dt > max(fn_max, fp_max) / 2.0)
        if len(candidates) == 0:
            continue
        y, x = candidates[rng.integers(len(candidates))]
        row = num - click_index if positive else 2 * num - click_index
        out[b, row, 0], out[b, row, 1], out[b, row, 2] = float(y), float(x), float(click_index)
    return out


def _padded_edt(mask: np.ndarray) -> np.ndarray:
    """Distance of each mask pixel to the nearest non-mask pixel (outside the image is non-mask)."""
    return ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]


@torch.no_grad()
def simulate_previous_clicks(
    net: nn.Module,
    image: torch.Tensor,
    points: torch.Tensor,
    gt: torch.Tensor,
    *,
    max_num_next_clicks: int,
    rng: np.random.Generator,
    with_prev_mask: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Run the no-grad part of an iterative training step.

    image (B, 3, H, W) in [0, 1]; points (B, 2N, 3); gt (B, 1, H, W). Draws the number of extra
    iterations uniformly in 0..max_num_next_clicks (the same for the whole batch), runs them with
    ``net`` in eval mode (restored afterwards) and returns (prev_mask (B, 1, H, W) float32
    probabilities, zeros when there was no iteration; points with the added clicks; the number
    of iterations). Pass the plain module, not a DistributedDataParallel wrapper: these passes
    take no gradient and must not trigger collective operations.
    """
    prev_mask = torch.zeros_like(image[:, :1], dtype=torch.float32)
    num_iters = int(rng.integers(0, max_num_next_clicks + 1))
    if num_iters == 0:
        return prev_mask, points, 0
    was_training = net.training
    net.eval()
    try:
        for click_index in range(1, num_iters + 1):
            output = net(image, points, prev_mask if with_prev_mask else None)
            prev_mask = torch.sigmoid(output["instances"].float())
            points = next_click_points(prev_mask, gt, points, click_index, rng)
    finally:
        net.train(was_training)
    return prev_mask, points, num_iters
