"""An inference-only copy of :class:`~napari_ritm.model.ritm_net.RITMNet` that computes the same
logits with less work.

:func:`optimize_for_inference` never touches the network it is given (whose ``state_dict`` and
``save()`` stay in the official format); it returns an :class:`InferenceRITM` built from a deep
copy, with these rewrites (mathematically exact; see :func:`optimize_for_inference` for what they do
to float32 rounding):

- **BatchNorm folding** (optional): every eval-mode ``BatchNorm2d`` is folded into the convolution
  that feeds it (``w' = w * g / sqrt(var + eps)``, ``b' = (b - mean) * g / sqrt(var + eps) + beta``)
  and replaced by ``nn.Identity``; likewise the ``|scale|`` of the click branch.
- **Dead OCR branches** (always): with one object class the pixel-to-object attention takes a
  softmax over a single key, which is exactly 1 for every pixel. ``f_pixel`` and ``f_object``
  (queries and keys) therefore cannot change the output and are dropped; the attended value
  ``f_up(f_down(c))`` is one vector per image, so its half of the fusing 1x1 convolution is
  computed once per image instead of at every pixel; the aux output is not upsampled.
- **channels_last** (optional): activations in NHWC, usually faster for oneDNN convolutions.

The copy has no training, aux-output or checkpoint API: only ``forward`` and ``variant``.

:func:`optimize_exact` is what the exact predictor mode uses: the folded channels_last copy when
a probe shows that it moves this network's probabilities by at most :data:`EXACT_TOLERANCE`,
else the copy that keeps every layer's arithmetic.
"""
from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from napari_ritm.model.ocr import SpatialOCR
from napari_ritm.model.ritm_net import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RITMNet,
    RITMVariant,
    ScaleLayer,
    disk_maps,
)

__all__ = [
    "EXACT_TOLERANCE",
    "InferenceCopy",
    "InferenceRITM",
    "SingleClassOCR",
    "fold_batchnorm",
    "optimize",
    "optimize_exact",
    "optimize_for_inference",
    "probe_batch",
]

#: The most a fused copy may move the probe's probabilities for :func:`optimize_exact` to use it:
#: ten times below the 1e-4 that exact mode promises against the reference predictor.
EXACT_TOLERANCE = 1e-5


def _batchnorm_slot(parent: nn.Module, name: str, child: nn.Module) -> tuple[nn.Module, str] | None:
    """Where the BatchNorm2d that ``child`` (``parent.<name>``) starts with lives: ``child`` itself,
    or the first element of a Sequential (the OCR heads nest (BN, ReLU) after their conv)."""
    if isinstance(child, nn.BatchNorm2d):
        return parent, name
    if isinstance(child, nn.Sequential) and len(child) and isinstance(child[0], nn.BatchNorm2d):
        return child, "0"
    return None


def fold_batchnorm(module: nn.Module) -> int:
    """Folds, in place, every ``BatchNorm2d`` that directly follows a ``Conv2d`` into that conv.

    "Directly follows" means the next sibling in registration order, either the BN itself or a
    Sequential starting with it; in the RITM network that is also the execution order (conv1/bn1
    in blocks and stem, ``[conv, bn, ...]`` Sequentials, OCR ``[conv, Sequential(bn, relu)]``).
    The folded BN becomes ``nn.Identity``. Needs eval-mode statistics; returns the count folded.
    """
    folded = 0
    children = list(module.named_children())
    for (conv_name, conv), (next_name, nxt) in zip(children, children[1:]):
        if not isinstance(conv, nn.Conv2d):
            continue
        slot = _batchnorm_slot(module, next_name, nxt)
        if slot is None:
            continue
        parent, bn_name = slot
        bn = getattr(parent, bn_name)
        # Fold in float64 so that the folded weights carry a single float32 rounding.
        conv64, bn64 = copy.deepcopy(conv).double().eval(), copy.deepcopy(bn).double().eval()
        fused = fuse_conv_bn_eval(conv64, bn64)
        setattr(module, conv_name, fused.to(conv.weight.dtype))
        setattr(parent, bn_name, nn.Identity())
        folded += 1
    for child in module.children():
        folded += fold_batchnorm(child)
    return folded


class SingleClassOCR(nn.Module):
    """OCR distribution head for one object class, without the attention it cannot use.

    ``forward(feats, context)``: feats (B, C, h, w), context (B, C, 1, 1) -> (B, out, h, w), equal
    to :class:`~napari_ritm.model.ocr.SpatialOCR` in eval mode: the attended features are
    ``f_up(f_down(context))`` at every pixel, so the fusing 1x1 convolution
    ``W @ [attended; feats]`` is split into ``pixel_proj(feats) + context_proj(attended)`` (the
    second is one vector per image), followed by the head's own (BN,) ReLU. Build it with
    :meth:`from_spatial_ocr`.
    """

    def __init__(
        self,
        f_down: nn.Module,
        f_up: nn.Module,
        context_proj: nn.Conv2d,
        pixel_proj: nn.Conv2d,
        post: nn.Module,
    ) -> None:
        super().__init__()
        self.f_down, self.f_up, self.post = f_down, f_up, post
        self.context_proj, self.pixel_proj = context_proj, pixel_proj

    @classmethod
    def from_spatial_ocr(cls, head: SpatialOCR) -> SingleClassOCR:
        """Reuses ``f_down``, ``f_up`` and the (BN, ReLU) of ``head``; splits its fusing conv."""
        fuse, post = head.conv_bn_dropout[0], head.conv_bn_dropout[1]
        if not isinstance(fuse, nn.Conv2d) or fuse.kernel_size != (1, 1):
            raise ValueError(f"unexpected OCR fusing layer {fuse!r}")
        out_ch, in2 = fuse.weight.shape[:2]
        half = in2 // 2
        context_proj = nn.Conv2d(half, out_ch, kernel_size=1, bias=fuse.bias is not None)
        pixel_proj = nn.Conv2d(half, out_ch, kernel_size=1, bias=False)
        with torch.no_grad():
            # torch.cat([attended, feats]) puts the attended (context) half first.
            context_proj.weight.copy_(fuse.weight[:, :half])
            pixel_proj.weight.copy_(fuse.weight[:, half:])
            if fuse.bias is not None:
                context_proj.bias.copy_(fuse.bias)
        block = head.object_context_block
        return cls(block.f_down, block.f_up, context_proj.to(fuse.weight),
                   pixel_proj.to(fuse.weight), post)

    def forward(self, feats: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if context.shape[2:] != (1, 1):
            raise ValueError(f"SingleClassOCR needs one class, got context {tuple(context.shape)}")
        attended = self.f_up(self.f_down(context))  # (B, C, 1, 1): the same at every pixel
        return self.post(self.pixel_proj(feats) + self.context_proj(attended))


def _fold_scale(maps_transform: nn.Sequential) -> nn.Sequential:
    """conv -> LeakyReLU -> conv -> ScaleLayer  becomes  conv -> LeakyReLU -> conv(w, b * |s|)."""
    conv, scale = maps_transform[2], maps_transform[3]
    if not (isinstance(conv, nn.Conv2d) and isinstance(scale, ScaleLayer)):
        raise ValueError("unexpected maps_transform layout")
    s = scale.scale.detach().abs()
    with torch.no_grad():
        conv.weight.mul_(s)
        conv.bias.mul_(s)
    return nn.Sequential(maps_transform[0], maps_transform[1], conv)


class InferenceRITM(nn.Module):
    """A deployed RITM network: same inputs as :class:`RITMNet`, only the ``instances`` output.

    ``forward(image, points, prev_mask=None)``: image float32 (B, 3, H, W) RGB in [0, 1]; points
    (B, 2N, 3) rows (y, x, index), positives first, (-1, -1, -1) padding; prev_mask (B, 1, H, W)
    in [0, 1] or None (zeros; ignored without a prev-mask input). Returns
    ``{"instances": (B, 1, H, W) float32 logits}``. Build it with :func:`optimize_for_inference`.
    ``folded``: BatchNorms folded into the convolutions; ``probe_change``: for a copy from
    :func:`optimize_exact`, how far the folded copy moved the probe (None otherwise).
    """

    def __init__(
        self,
        variant: RITMVariant,
        maps_transform: nn.Module,
        feature_extractor: nn.Module,
        channels_last: bool,
    ) -> None:
        super().__init__()
        self.variant, self.channels_last = variant, channels_last
        self.maps_transform, self.feature_extractor = maps_transform, feature_extractor
        self.folded = False
        self.probe_change: float | None = None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(
        self, image: torch.Tensor, points: torch.Tensor, prev_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        b, _, h, w = image.shape
        maps = disk_maps(points.to(image.device), h, w, self.variant.norm_radius)
        if self.variant.with_prev_mask:
            prev = image.new_zeros((b, 1, h, w)) if prev_mask is None else prev_mask
            maps = torch.cat((prev.to(maps.dtype), maps), dim=1)
        x = (image - self.mean) / self.std
        if self.channels_last:
            maps = maps.contiguous(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        out, _ = self.feature_extractor(x, self.maps_transform(maps))
        logits = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=True)
        return {"instances": logits.contiguous()}


def optimize_for_inference(
    net: RITMNet, *, fold_batchnorms: bool = True, channels_last: bool = False
) -> InferenceRITM:
    """An :class:`InferenceRITM` computing ``net``'s ``instances`` logits with less work: the dead
    OCR attention removed, and (``fold_batchnorms``) BatchNorms and the click-branch scale folded
    into the convolutions, (``channels_last``) NHWC activations.

    Removing the dead branches keeps the arithmetic of every layer before the OCR head; splitting
    its fusing convolution in two sums moves the logits by at most ~1.2e-4 (probabilities 3e-5)
    on the fake release checkpoints, whose random weights amplify rounding differences a
    thousandfold. Folding and channels_last change the summation order of every convolution: on
    those checkpoints the h18 logits then move by up to ~1.1e-3 / 1.3e-3 (probabilities 2.5e-4 /
    2.9e-4), the same kind of change as running torch with another thread count. Use them where a
    faster, not bit-faithful, answer is wanted.

    ``net`` itself is left unchanged (deep-copied first). The result is in eval mode, with
    ``requires_grad=False`` parameters, on ``net``'s device.
    """
    if not isinstance(net, RITMNet):
        raise TypeError(f"expected an RITMNet, got {type(net).__name__}")
    work = copy.deepcopy(net).eval()
    maps_transform = work.maps_transform
    if fold_batchnorms:
        fold_batchnorm(work)
        left = [name for name, m in work.named_modules() if isinstance(m, nn.BatchNorm2d)]
        if left:
            raise RuntimeError(f"BatchNorms without a preceding conv: {left[:3]}")
        maps_transform = _fold_scale(maps_transform)
    extractor = work.feature_extractor
    extractor.ocr_distri_head = SingleClassOCR.from_spatial_ocr(extractor.ocr_distri_head)
    deployed = InferenceRITM(work.variant, maps_transform, extractor, channels_last).to(
        net.mean.device
    )
    deployed.folded = fold_batchnorms
    if channels_last:
        deployed = deployed.to(memory_format=torch.channels_last)
    for p in deployed.parameters():
        p.requires_grad_(False)
    return deployed.eval()


def probe_batch(size: int = 160, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed input shaped like one exact-mode click: (image, points, prev_mask) for ``RITMNet``.

    A smooth random RGB image in [0, 1] with fine noise and its horizontal mirror (B = 2), a
    positive click at the centre and a negative one near a corner (mirrored likewise), and a
    previous mask of 0.95 inside a centred disk, 0.05 outside. float32; ``size`` x ``size``.
    """
    gen = torch.Generator().manual_seed(seed)
    smooth = F.interpolate(torch.rand(1, 3, 6, 6, generator=gen), size=(size, size),
                           mode="bilinear", align_corners=True)
    image = (0.8 * smooth + 0.2 * torch.rand(1, 3, size, size, generator=gen)).clamp(0, 1)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = (size - 1) / 2
    disk = ((yy - centre) ** 2 + (xx - centre) ** 2 < (size / 5) ** 2).float()
    prev = (0.05 + 0.9 * disk)[None, None]
    neg_y, neg_x = 0.15 * size, 0.8 * size
    points = torch.tensor([[[centre, centre, 0.0], [neg_y, neg_x, 1.0]],
                           [[centre, centre, 0.0], [neg_y, size - 1 - neg_x, 1.0]]])
    return torch.cat([image, image.flip(3)]), points, torch.cat([prev, prev.flip(3)])


class InferenceCopy(NamedTuple):
    """An inference copy: the ``model`` to run, whether it is the ``fused`` (folded,
    channels_last) one, and for :func:`optimize_exact` the ``probe_change`` (max |dp|) the fused
    copy showed on the probe (None where no probe ran)."""

    model: InferenceRITM
    fused: bool
    probe_change: float | None


def optimize_exact(net: RITMNet, tolerance: float = EXACT_TOLERANCE) -> InferenceCopy:
    """The fastest inference copy of ``net`` whose probabilities stay within ``tolerance`` of the
    plain network's on :func:`probe_batch`, at the current torch thread count.

    Folding and channels_last only reorder float32 sums, but how far that moves the output
    depends on the weights: trained RITM weights move the probe's probabilities by ~6e-7, while
    random ones can amplify it to 2e-4 (the fake release checkpoints). So the fused copy is
    checked on this network once (one probe forward of each, ~0.1-0.4 s) and used only if it
    passes; otherwise the copy without folding, which keeps every layer's arithmetic, is
    returned (``fused=False``).
    """
    fused = optimize_for_inference(net, fold_batchnorms=True, channels_last=True)
    image, points, prev = (t.to(net.mean.device) for t in probe_batch())
    prev_mask = prev if net.variant.with_prev_mask else None
    with torch.inference_mode():
        want = torch.sigmoid(net(image, points, prev_mask)["instances"])
        got = torch.sigmoid(fused(image, points, prev_mask)["instances"])
    change = float((got - want).abs().max())
    chosen = fused if change <= tolerance else optimize_for_inference(net, fold_batchnorms=False)
    chosen.probe_change = change
    return InferenceCopy(chosen, chosen is fused, change)


def optimize(net: RITMNet, how: str) -> InferenceCopy:
    """The inference copy of ``net`` for a predictor's ``optimize`` setting: ``"exact"``
    (:func:`optimize_exact`) or ``"fused"`` (always folded and channels_last)."""
    if how == "exact":
        return optimize_exact(net)
    if how == "fused":
        return InferenceCopy(optimize_for_inference(net, channels_last=True), True, None)
    raise ValueError(f"optimize must be 'exact' or 'fused', got {how!r}")
