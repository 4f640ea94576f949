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

from napari_ritm.inference.clicks import DEFAULT_THRESHOLD

#: Elements of the (images, H, W, W + 2) tensor the GPU distance transform builds at once.
CHUNK_ELEMENTS = 2**26


def next_click_points(
    probs: torch.Tensor,
    gt: torch.Tensor,
    points: torch.Tensor,
    click_index: int,
    rng: np.random.Generator,
    *,
    pred_thresh: float = DEFAULT_THRESHOLD,
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
    probs = probs.detach().float()
    gt = gt.detach().to(probs.device)
    valid = gt != -1
    is_object = gt > 0.5
    fn = (is_object & (probs < pred_thresh) & valid)[:, 0]
    fp = (~is_object & (probs > pred_thresh) & valid)[:, 0]
    fn_d2, fp_d2 = squared_distance_inside(fn), squared_distance_inside(fp)
    fn_max, fp_max = fn_d2.amax(dim=(1, 2)), fp_d2.amax(dim=(1, 2))
    positive = fn_max > fp_max
    d2 = torch.where(positive[:, None, None], fn_d2, fp_d2)
    # distance > max / 2, in exact integer squared distances
    far = 4 * d2 > torch.maximum(fn_max, fp_max)[:, None, None]
    far, positive = far.cpu().numpy(), positive.cpu().numpy()
    num = points.shape[1] // 2
    out = points.detach().cpu().clone()
    for b in range(far.shape[0]):
        candidates = np.argwhere(far[b])
        if len(candidates) == 0:
            continue
        y, x = candidates[rng.integers(len(candidates))]
        row = num - click_index if positive[b] else 2 * num - click_index
        out[b, row] = torch.tensor([float(y), float(x), float(click_index)])
    return out.to(points.device)


def squared_distance_inside(mask: torch.Tensor) -> torch.Tensor:
    """Exact squared Euclidean distance of each ``True`` pixel to the nearest ``False`` pixel,
    outside the image counting as ``False``; 0 elsewhere.

    mask (B, H, W) bool on any device; returns (B, H, W) int64 on the same device. On a CPU this
    is scipy's ``distance_transform_edt`` per image; on other devices a separable exact transform
    in torch (nearest ``False`` pixel in each column, then the minimum over each row of
    ``g(x')^2 + (x - x')^2``), so the iterative clicks of a GPU run stay on the GPU.
    """
    if mask.device.type == "cpu":
        planes = [ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1] for m in mask.numpy()]
        return torch.from_numpy(np.rint(np.square(np.stack(planes))).astype(np.int64)).reshape(
            mask.shape
        )
    return _squared_distance_torch(mask)


def _squared_distance_torch(mask: torch.Tensor) -> torch.Tensor:
    batch, h, w = mask.shape
    inside = torch.nn.functional.pad(mask, (1, 1, 1, 1))
    ys = torch.arange(h + 2, device=mask.device, dtype=torch.int64)[None, :, None]
    big = 4 * (h + w + 4)
    above = torch.cummax(torch.where(inside, -big, ys), dim=1).values
    below = torch.flip(
        torch.cummin(torch.flip(torch.where(inside, big, ys), dims=(1,)), dim=1).values, dims=(1,)
    )
    g2 = torch.minimum(ys - above, below - ys).square()[:, 1:-1]  # (B, H, W + 2) column distances
    xs = torch.arange(w + 2, device=mask.device, dtype=torch.int64)
    dx2 = (xs[1:-1, None] - xs[None, :]).square()  # (W, W + 2)
    out = torch.empty((batch, h, w), dtype=torch.int64, device=mask.device)
    chunk = max(1, CHUNK_ELEMENTS // (h * w * (w + 2)))
    for start in range(0, batch, chunk):
        part = g2[start : start + chunk, :, None, :] + dx2
        out[start : start + chunk] = part.amin(dim=-1)
    return out


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
    prev_mask: torch.Tensor | None = None,
    frozen: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Run the no-grad part of an iterative training step.

    image (B, 3, H, W) in [0, 1]; points (B, 2N, 3); gt (B, 1, H, W); ``prev_mask`` (B, 1, H, W)
    the samples' own previous masks (None: zeros), e.g. an external mask to refine; ``frozen``
    (B,) bool: samples that keep their previous mask and points through the iterations. Draws
    the number of extra iterations uniformly in 0..max_num_next_clicks (the same for the whole
    batch), runs them with ``net`` in eval mode (restored afterwards) and returns (prev_mask
    (B, 1, H, W) float32 probabilities, the samples' own when there was no iteration; points
    with the added clicks; the number of iterations). Pass the plain module, not a
    DistributedDataParallel wrapper: these passes take no gradient and must not trigger
    collective operations.
    """
    if prev_mask is None:
        prev_mask = torch.zeros_like(image[:, :1], dtype=torch.float32)
    prev_mask = prev_mask.float()
    num_iters = int(rng.integers(0, max_num_next_clicks + 1))
    if num_iters == 0:
        return prev_mask, points, 0
    keep = None if frozen is None or not bool(frozen.any()) else frozen.to(image.device).bool()
    start_prev, start_points = prev_mask, points
    was_training = net.training
    net.eval()
    try:
        for click_index in range(1, num_iters + 1):
            output = net(image, points, prev_mask if with_prev_mask else None)
            prev_mask = torch.sigmoid(output["instances"].float())
            points = next_click_points(prev_mask, gt, points, click_index, rng)
    finally:
        net.train(was_training)
    if keep is not None:
        prev_mask = torch.where(keep[:, None, None, None], start_prev, prev_mask)
        points = torch.where(keep[:, None, None].to(points.device), start_points.to(points.device),
                             points)
    return prev_mask, points, num_iters
