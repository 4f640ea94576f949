"""RITM's interactive segmentation network: disk click maps + Conv1S fusion + HRNet-OCR.

Computes exactly what the official ``HRNetModel`` (``ISModel``) computes for the released
models (use_disks, use_leaky_relu, no rgb_conv, aux output), with the previous mask as a
separate argument instead of a 4th image channel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_ritm.model.ocr import HRNetOCR
from napari_ritm.model.variants import RITMVariant

__all__ = ["RITMNet", "RITMVariant", "ScaleLayer", "disk_maps", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# feature_extractor children that the official model trains at the full learning rate; the
# rest of feature_extractor (stem, stages, cls_head, aux_head) gets backbone_lr_mult = 0.1.
_FULL_LR_CHILDREN = ("conv3x3_ocr", "ocr_gather_head", "ocr_distri_head")


def disk_maps(points: torch.Tensor, height: int, width: int, radius: float) -> torch.Tensor:
    """Binary click disks, RITM's ``DistMaps(use_disks=True)``.

    ``points``: (B, 2N, 3) rows (y, x, index), float or int, positives in rows 0..N-1 and
    negatives in rows N..2N-1; a row is ignored iff max(y, x) < 0. Returns float32
    (B, 2, height, width): channel 0 positive, 1 negative; a pixel (r, c) is 1.0 iff
    (r - y)**2 + (c - x)**2 <= radius**2 for some valid click of that sign (computed in
    float32 with the float coordinates, no rounding), else 0.0.
    """
    b, rows, _ = points.shape
    if rows % 2:
        raise ValueError(f"points must have 2N rows (an even number), got {tuple(points.shape)}")
    yx = points[..., :2].to(torch.float32).reshape(-1, 2)
    valid = yx.amax(dim=1) >= 0  # (P,)
    r = torch.arange(height, dtype=torch.float32, device=points.device)
    c = torch.arange(width, dtype=torch.float32, device=points.device)
    dy = r[None, :] - yx[:, 0:1]  # (P, H)
    dx = c[None, :] - yx[:, 1:2]  # (P, W)
    dist2 = (dy * dy)[:, :, None] + (dx * dx)[:, None, :]  # (P, H, W)
    inside = (dist2 <= float(radius) ** 2) & valid[:, None, None]
    return inside.view(b, 2, rows // 2, height, width).any(dim=2).to(torch.float32)


class ScaleLayer(nn.Module):
    """Multiplies by ``|scale|`` (one learnable scalar, initialised to ``init_value``)."""

    def __init__(self, init_value: float = 0.05) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), init_value, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.abs()


class RITMNet(nn.Module):
    """RITM HRNet-OCR click segmentation network (official ``HRNetModel``, released settings).

    ``forward(image, points, prev_mask=None)``:

    - ``image``: float32 (B, 3, H, W) RGB in [0, 1] (ImageNet normalisation happens inside);
    - ``points``: (B, 2N, 3) float (or int) rows (y, x, click_index) in input pixels,
      positives in rows 0..N-1, negatives in rows N..2N-1, (-1, -1, -1) padding;
    - ``prev_mask``: float32 (B, 1, H, W) probability in [0, 1], or None (zeros). Ignored by
      models without a previous-mask input (``variant.with_prev_mask`` False).

    Returns ``{"instances": logits, "instances_aux": logits}``, both float32 (B, 1, H, W)
    (computed at 1/4 resolution, upsampled bilinearly with align_corners=True; no sigmoid).
    A float64 copy (``.double()``) takes a float64 image and returns float64: the tests compare
    it with the official outputs free of float32 rounding.

    ``state_dict`` keys equal the official ones: ``maps_transform.*`` (click/mask fusion:
    conv1x1 -> LeakyReLU(0.2) -> conv3x3/2 -> |scale|, added to the stem after conv1/bn1/relu)
    and ``feature_extractor.*`` (HRNet + OCR + heads). ``save(path)`` writes the official
    checkpoint format; :func:`napari_ritm.model.checkpoint.load_checkpoint` reads it.
    """

    def __init__(
        self,
        width: int,
        ocr_width: int,
        small: bool,
        with_prev_mask: bool = True,
        norm_radius: float = 5.0,
    ) -> None:
        super().__init__()
        if norm_radius <= 0:
            raise ValueError(f"norm_radius must be positive, got {norm_radius}")
        self.variant = RITMVariant(
            int(width), int(ocr_width), bool(small), bool(with_prev_mask), float(norm_radius)
        )
        in_ch = 3 if with_prev_mask else 2
        self.maps_transform = nn.Sequential(
            nn.Conv2d(in_ch, 16, kernel_size=1),
            nn.LeakyReLU(negative_slope=0.2),
            nn.Conv2d(16, 64, kernel_size=3, stride=2, padding=1),
            ScaleLayer(init_value=0.05),
        )
        self.feature_extractor = HRNetOCR(width, ocr_width, small)
        # Not in the state_dict (the official model keeps them outside the module too).
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    @classmethod
    def from_variant(cls, variant: RITMVariant) -> RITMNet:
        """A freshly initialised network of the given variant."""
        v = variant
        return cls(v.width, v.ocr_width, v.small, v.with_prev_mask, v.norm_radius)

    def forward(
        self,
        image: torch.Tensor,
        points: torch.Tensor,
        prev_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got shape {tuple(image.shape)}")
        b, _, h, w = image.shape
        if points.ndim != 3 or points.shape[0] != b or points.shape[2] != 3:
            raise ValueError(f"points must be (B={b}, 2N, 3), got shape {tuple(points.shape)}")
        maps = disk_maps(points.to(image.device), h, w, self.variant.norm_radius).to(image.dtype)
        if self.variant.with_prev_mask:
            if prev_mask is None:
                prev_mask = image.new_zeros((b, 1, h, w))
            elif prev_mask.shape != (b, 1, h, w):
                raise ValueError(
                    f"prev_mask must be (B, 1, H, W) = {(b, 1, h, w)}, got {tuple(prev_mask.shape)}"
                )
            maps = torch.cat((prev_mask.to(maps.dtype), maps), dim=1)
        coord_features = self.maps_transform(maps)
        x = (image - self.mean) / self.std
        out, out_aux = self.feature_extractor(x, coord_features)
        size = (h, w)
        return {
            "instances": F.interpolate(out, size=size, mode="bilinear", align_corners=True),
            "instances_aux": F.interpolate(out_aux, size=size, mode="bilinear", align_corners=True),
        }

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters the official training runs at ``backbone_lr_mult`` (0.1) x the base lr:
        all of ``feature_extractor`` except ``conv3x3_ocr`` and the two OCR heads (so the HRNet
        stem and stages, ``cls_head`` and ``aux_head``)."""
        return [
            p
            for name, child in self.feature_extractor.named_children()
            if name not in _FULL_LR_CHILDREN
            for p in child.parameters()
        ]

    def head_parameters(self) -> list[nn.Parameter]:
        """The remaining parameters (full lr): ``maps_transform``, ``conv3x3_ocr``, OCR heads."""
        backbone = {id(p) for p in self.backbone_parameters()}
        return [p for p in self.parameters() if id(p) not in backbone]

