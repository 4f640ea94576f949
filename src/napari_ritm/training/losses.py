"""RITM training losses: normalized focal loss on ``instances`` + sigmoid BCE on ``instances_aux``.

Both take logits and labels of shape (B, 1, H, W); labels are 1 (object), 0 (background) or
``ignore_label`` (-1, excluded). They return one value per image, shape (B,), float32 (float64
for float64 logits); the batch value is the mean over images. The maths follows the RITM paper
(Sofiiuk et al. 2021) and is checked against the official code's outputs in
``tests/test_losses.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _as_float(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """At least float32 (half-precision logits from autocast are promoted), labels shaped alike."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    return logits.to(dtype), labels.to(dtype).view_as(logits)


def normalized_focal_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    alpha: float = 0.5,
    gamma: float = 2.0,
    eps: float = 1e-12,
    ignore_label: float = -1,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalized focal loss per image, (B,).

    p = sigmoid(logit); pt = 1 - |y - p| on valid pixels (1 on ignored ones); the focal weight
    (1 - pt)^gamma is rescaled per image by #valid / sum(weights), a factor that carries no
    gradient, so the loss keeps the scale of a plain cross entropy while hard pixels dominate.
    ``weight`` (B, 1, H, W), >= 0: how much each pixel counts; the sums over valid pixels
    become weighted sums (None: every pixel 1, the paper's loss).
    """
    logits, labels = _as_float(logits, labels)
    valid = labels != ignore_label
    counts = valid.to(logits.dtype)
    if weight is not None:
        counts = counts * weight.to(logits.dtype).view_as(logits)
    prob = torch.sigmoid(logits)
    alpha_t = torch.where(labels > 0.5, alpha, 1.0 - alpha)
    pt = torch.where(valid, 1.0 - (labels - prob).abs(), torch.ones_like(prob))
    beta = (1.0 - pt) ** gamma
    total = counts.sum(dim=(-2, -1), keepdim=True)
    mult = (total / ((counts * beta).sum(dim=(-2, -1), keepdim=True) + eps)).detach()
    log_pt = torch.log(torch.clamp(pt + eps, max=1.0))
    loss = -alpha_t * beta * mult * log_pt * counts
    dims = tuple(range(1, loss.dim()))
    return loss.sum(dim=dims) / (counts.sum(dim=dims) + eps)


def sigmoid_bce_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, ignore_label: float = -1
) -> torch.Tensor:
    """Binary cross entropy on logits per image, (B,): mean over all pixels (ignored ones add 0)."""
    logits, labels = _as_float(logits, labels)
    valid = labels != ignore_label
    target = torch.where(valid, labels, torch.zeros_like(labels))
    loss = torch.relu(logits) - logits * target + F.softplus(-logits.abs())
    return (loss * valid).mean(dim=tuple(range(1, loss.dim())))


class RITMLoss(nn.Module):
    """Training objective: ``instance_weight * NFL(instances) + aux_weight * BCE(instances_aux)``.

    forward(outputs, labels, weight=None): ``outputs`` is the network's dict with ``instances``
    and ``instances_aux`` logits (B, 1, H, W); ``labels`` (B, 1, H, W) float in {1, 0, -1};
    ``weight`` (B, 1, H, W) the NFL's pixel weights (the auxiliary BCE is not weighted).
    Returns (total scalar tensor, {"nfl": scalar, "bce": scalar}) with the parts detached.
    """

    def __init__(self, instance_weight: float = 1.0, aux_weight: float = 0.4,
                 alpha: float = 0.5, gamma: float = 2.0) -> None:
        super().__init__()
        self.instance_weight, self.aux_weight = instance_weight, aux_weight
        self.alpha, self.gamma = alpha, gamma

    def forward(self, outputs: dict[str, torch.Tensor], labels: torch.Tensor,
                weight: torch.Tensor | None = None):
        nfl = normalized_focal_loss(
            outputs["instances"], labels, alpha=self.alpha, gamma=self.gamma, weight=weight
        ).mean()
        total = self.instance_weight * nfl
        parts = {"nfl": nfl.detach()}
        if self.aux_weight > 0 and "instances_aux" in outputs:
            bce = sigmoid_bce_loss(outputs["instances_aux"], labels).mean()
            total = total + self.aux_weight * bce
            parts["bce"] = bce.detach()
        return total, parts
