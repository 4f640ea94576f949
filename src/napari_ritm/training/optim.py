"""From-scratch initialisation and the optimizer of the RITM recipe."""

from __future__ import annotations

import math

import torch


def init_weights(net: torch.nn.Module, magnitude: float = 2.0) -> torch.nn.Module:
    """The official from-scratch initialisation (``XavierGluon(rnd_type="gaussian", magnitude=2)``):
    conv/linear weights ~ N(0, magnitude / ((fan_in + fan_out) / 2)), biases 0, norm layers
    weight 1 and bias 0. Returns ``net``, changed in place."""
    for module in net.modules():
        if isinstance(module, (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm)):
            if module.weight is not None:
                torch.nn.init.ones_(module.weight)
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(module.weight)
            torch.nn.init.normal_(
                module.weight, 0.0, math.sqrt(magnitude / ((fan_in + fan_out) / 2.0))
            )
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    return net


def build_optimizer(net: torch.nn.Module, lr: float, backbone_lr_mult: float) -> torch.optim.Adam:
    """Adam (betas 0.9/0.999, eps 1e-8) with the backbone at ``lr * backbone_lr_mult``."""
    groups = [
        {"params": list(net.backbone_parameters()), "lr": lr * backbone_lr_mult},
        {"params": list(net.head_parameters()), "lr": lr},
    ]
    return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
