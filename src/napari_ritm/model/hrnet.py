"""HRNet-V2 backbone as RITM uses it (widths 18/32, optional ``small`` variant).

Module and attribute names follow the official RITM checkpoints (``conv1``, ``layer1``,
``transition1``, ``stage2.0.branches.0.0.conv1`` ...), so ``state_dict`` keys match 1:1.
The OCR heads that sit on top of this backbone are in :mod:`napari_ritm.model.ocr`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HRNet", "BasicBlock", "Bottleneck", "HighResolutionModule"]


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv_bn(
    in_ch: int, out_ch: int, *, kernel_size: int, stride: int, relu: bool
) -> nn.Sequential:
    """conv (no bias) -> BN [-> ReLU], as an indexed Sequential (keys ``0.weight``, ``1.*``)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Residual block of two 3x3 convs; (B, C, H, W) -> (B, C, H, W), channel count kept."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual block, ``planes * 4`` output channels, stride 1.

    A 1x1 conv + BN ``downsample`` projects the input when its channel count differs.
    """

    expansion = 4

    def __init__(self, in_ch: int, planes: int) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if in_ch != out_ch:
            self.downsample = _conv_bn(in_ch, out_ch, kernel_size=1, stride=1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class HighResolutionModule(nn.Module):
    """One multi-resolution module: parallel branches of BasicBlocks, then all-to-all fusion.

    Input and output: a list of ``len(channels)`` tensors, branch i of shape
    (B, channels[i], H / 2**i, W / 2**i) (sizes rounded up at each stride-2 step).
    Lower-resolution inputs are brought up with bilinear interpolation (align_corners=True),
    higher-resolution ones down with chains of stride-2 3x3 convs.
    """

    def __init__(self, channels: list[int], num_blocks: int) -> None:
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(c) for _ in range(num_blocks))) for c in channels
        )
        fuse_layers = []
        for i in range(n):
            row: list[nn.Module | None] = []
            for j in range(n):
                if j > i:
                    row.append(
                        _conv_bn(channels[j], channels[i], kernel_size=1, stride=1, relu=False)
                    )
                elif j == i:
                    row.append(None)
                else:
                    steps = [
                        _conv_bn(channels[j], channels[j], kernel_size=3, stride=2, relu=True)
                        for _ in range(i - j - 1)
                    ]
                    steps.append(
                        _conv_bn(channels[j], channels[i], kernel_size=3, stride=2, relu=False)
                    )
                    row.append(nn.Sequential(*steps))
            fuse_layers.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse_layers)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            size = xs[i].shape[-2:]
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, len(xs)):
                if j == i:
                    t = xs[j]
                elif j > i:
                    t = F.interpolate(row[j](xs[j]), size=size, mode="bilinear", align_corners=True)
                else:
                    t = row[j](xs[j])
                y = y + t
            out.append(self.relu(y))
        return out


def _transition(prev: list[int], cur: list[int]) -> nn.ModuleList:
    """Maps the branches of one stage to the next: adapts channels, adds one stride-2 branch."""
    layers: list[nn.Module | None] = [
        None if p == c else _conv_bn(p, c, kernel_size=3, stride=1, relu=True)
        for p, c in zip(prev, cur)
    ]
    layers.append(nn.Sequential(_conv_bn(prev[-1], cur[-1], kernel_size=3, stride=2, relu=True)))
    return nn.ModuleList(layers)


def _apply_transition(transition: nn.ModuleList, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [
        xs[i] if layer is None else layer(xs[min(i, len(xs) - 1)])
        for i, layer in enumerate(transition)
    ]


class HRNet(nn.Module):
    """HRNet-V2 feature extractor (stem + 4 stages) with RITM's click-feature injection.

    ``forward(x, additional_features=None)``: x float32 (B, 3, H, W) (normalised RGB);
    ``additional_features`` (B, 64, ceil(H/2), ceil(W/2)) or None is added to the stem after
    conv1/bn1/relu. Returns the four branches upsampled to the 1/4 resolution and
    concatenated: (B, 15 * width, ceil(ceil(H/2)/2), ceil(ceil(W/2)/2)).

    ``small=True`` uses 2 blocks per branch (4 otherwise) and 1/3/2 modules in stages 2/3/4
    (1/4/3 otherwise).
    """

    def __init__(self, width: int, small: bool) -> None:
        super().__init__()
        num_blocks = 2 if small else 4
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.conv1 = _conv3x3(3, 64, stride=2)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = _conv3x3(64, 64, stride=2)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(
            Bottleneck(64, 64), *(Bottleneck(256, 64) for _ in range(num_blocks - 1))
        )
        self.transition1 = _transition([256], widths[:2])
        self.stage2 = self._stage(widths[:2], 1, num_blocks)
        self.transition2 = _transition(widths[:2], widths[:3])
        self.stage3 = self._stage(widths[:3], 3 if small else 4, num_blocks)
        self.transition3 = _transition(widths[:3], widths)
        self.stage4 = self._stage(widths, 2 if small else 3, num_blocks)
        self.out_channels = sum(widths)

    @staticmethod
    def _stage(channels: list[int], num_modules: int, num_blocks: int) -> nn.Sequential:
        modules = (HighResolutionModule(channels, num_blocks) for _ in range(num_modules))
        return nn.Sequential(*modules)

    def forward(
        self, x: torch.Tensor, additional_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        if additional_features is not None:
            x = x + additional_features
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        xs = self.stage2(_apply_transition(self.transition1, [x]))
        xs = self.stage3(_apply_transition(self.transition2, xs))
        xs = self.stage4(_apply_transition(self.transition3, xs))
        size = xs[0].shape[-2:]
        ups = [F.interpolate(t, size=size, mode="bilinear", align_corners=True) for t in xs[1:]]
        return torch.cat([xs[0], *ups], dim=1)
