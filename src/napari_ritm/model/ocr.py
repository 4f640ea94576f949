"""OCR (object-contextual representations) heads on top of HRNet, as in RITM's HRNet-OCR.

``HRNetOCR`` is RITM's ``feature_extractor``: the HRNet backbone plus ``conv3x3_ocr``,
``ocr_gather_head``, ``ocr_distri_head``, ``cls_head`` and ``aux_head`` as direct children,
registered in that order so that ``state_dict`` keys and their order match the checkpoints.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_ritm.model.hrnet import HRNet

__all__ = ["HRNetOCR", "SpatialGather", "ObjectAttentionBlock", "SpatialOCR"]


def _conv1x1_bn_relu(in_ch: int, out_ch: int) -> list[nn.Module]:
    """conv1x1 (no bias) followed by a nested (BN, ReLU): keys ``k.weight`` and ``k+1.0.*``."""
    return [
        nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False),
        nn.Sequential(nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)),
    ]


class SpatialGather(nn.Module):
    """Soft object regions -> one context vector per class.

    ``forward(feats, probs)``: feats (B, C, h, w), probs (B, K, h, w) logits; the logits are
    softmax-normalised over all h*w pixels and used as weights for a sum of the features.
    Returns (B, C, K, 1).
    """

    def forward(self, feats: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        b, k = probs.shape[:2]
        weights = F.softmax(probs.reshape(b, k, -1), dim=2)  # (B, K, hw)
        pixels = feats.reshape(b, feats.shape[1], -1).permute(0, 2, 1)  # (B, hw, C)
        context = torch.matmul(weights, pixels)  # (B, K, C)
        return context.permute(0, 2, 1).unsqueeze(3)


class ObjectAttentionBlock(nn.Module):
    """Pixel-to-object attention (OCR, scale 1).

    ``forward(x, proxy)``: x (B, C, h, w) pixel features, proxy (B, C, K, 1) object context.
    Queries come from ``f_pixel(x)``, keys from ``f_object(proxy)``, values from
    ``f_down(proxy)``; the attended values go through ``f_up``. Returns (B, C, h, w).
    With one object class the softmax is over a single key, so every pixel gets the value.
    """

    def __init__(self, in_channels: int, key_channels: int) -> None:
        super().__init__()
        self.key_channels = key_channels
        self.f_pixel = nn.Sequential(
            *_conv1x1_bn_relu(in_channels, key_channels),
            *_conv1x1_bn_relu(key_channels, key_channels),
        )
        self.f_object = nn.Sequential(
            *_conv1x1_bn_relu(in_channels, key_channels),
            *_conv1x1_bn_relu(key_channels, key_channels),
        )
        self.f_down = nn.Sequential(*_conv1x1_bn_relu(in_channels, key_channels))
        self.f_up = nn.Sequential(*_conv1x1_bn_relu(key_channels, in_channels))

    def forward(self, x: torch.Tensor, proxy: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        query = self.f_pixel(x).reshape(b, self.key_channels, -1).permute(0, 2, 1)  # (B, hw, Kc)
        key = self.f_object(proxy).reshape(b, self.key_channels, -1)  # (B, Kc, K)
        value = self.f_down(proxy).reshape(b, self.key_channels, -1).permute(0, 2, 1)  # (B, K, Kc)
        sim = torch.matmul(query, key) * (self.key_channels**-0.5)
        sim = F.softmax(sim, dim=-1)
        context = torch.matmul(sim, value).permute(0, 2, 1).reshape(b, self.key_channels, h, w)
        return self.f_up(context)


class SpatialOCR(nn.Module):
    """OCR distribution head: object context concatenated to the pixel features, fused by 1x1.

    ``forward(feats, context)``: feats (B, C, h, w), context (B, C, K, 1) -> (B, out, h, w).
    """

    def __init__(
        self, in_channels: int, key_channels: int, out_channels: int, dropout: float
    ) -> None:
        super().__init__()
        self.object_context_block = ObjectAttentionBlock(in_channels, key_channels)
        self.conv_bn_dropout = nn.Sequential(
            *_conv1x1_bn_relu(2 * in_channels, out_channels), nn.Dropout2d(dropout)
        )

    def forward(self, feats: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        attended = self.object_context_block(feats, context)
        return self.conv_bn_dropout(torch.cat([attended, feats], dim=1))


class HRNetOCR(HRNet):
    """HRNet + OCR with one output class: RITM's ``feature_extractor``.

    ``forward(x, additional_features=None)`` takes what :class:`HRNet` takes and returns
    ``(instances, instances_aux)``, two (B, 1, h, w) logit maps at the 1/4 resolution
    (h = ceil(ceil(H/2)/2)). ``instances_aux`` (``aux_head``) is also the soft object region
    that OCR gathers the context with; ``instances`` is ``cls_head`` on the OCR features.
    ``ocr_width`` is the key width; the OCR features have ``2 * ocr_width`` channels.
    """

    def __init__(self, width: int, ocr_width: int, small: bool) -> None:
        super().__init__(width, small)
        feats_ch = self.out_channels
        mid_ch = 2 * ocr_width
        self.conv3x3_ocr = nn.Sequential(
            nn.Conv2d(feats_ch, mid_ch, kernel_size=3, padding=1),
            nn.BatchNorm2d(mid_ch),
            nn.ReLU(inplace=True),
        )
        self.ocr_gather_head = SpatialGather()
        self.ocr_distri_head = SpatialOCR(mid_ch, ocr_width, mid_ch, dropout=0.05)
        self.cls_head = nn.Conv2d(mid_ch, 1, kernel_size=1)
        self.aux_head = nn.Sequential(
            nn.Conv2d(feats_ch, feats_ch, kernel_size=1),
            nn.BatchNorm2d(feats_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(feats_ch, 1, kernel_size=1),
        )

    def forward(
        self, x: torch.Tensor, additional_features: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats = super().forward(x, additional_features)
        out_aux = self.aux_head(feats)
        feats = self.conv3x3_ocr(feats)
        context = self.ocr_gather_head(feats, out_aux)
        feats = self.ocr_distri_head(feats, context)
        return self.cls_head(feats), out_aux
