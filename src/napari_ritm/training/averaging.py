"""Averaging the weights of checkpoints of one training run (stochastic weight averaging).

At a constant learning rate the weights wander around a good region and any single checkpoint
is a noisy draw from it; the mean of several checkpoints of the same run sits nearer its centre
and is measurably better (the run history in benchmarks/results/). Floating tensors are
averaged (the BatchNorm running statistics included); integer buffers
(``num_batches_tracked``) come from the last checkpoint.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["average_checkpoints"]


def average_checkpoints(paths: Sequence[str | Path]):
    """An ``RITMNet`` (eval mode, float32) whose floating weights are the mean of those of the
    checkpoints at ``paths`` (at least one; all of one architecture, else ``ValueError``)."""
    import torch

    from napari_ritm.model.zoo import load_model

    if not paths:
        raise ValueError("no checkpoint to average")
    net = load_model(str(paths[-1]))
    states = [net.state_dict()]
    for path in paths[:-1]:
        other = load_model(str(path))
        if other.variant != net.variant:
            raise ValueError(f"{path} is a {other.variant.name}, {paths[-1]} a {net.variant.name}:"
                             " only checkpoints of one architecture can be averaged")
        states.append(other.state_dict())
    with torch.no_grad():
        for name, tensor in states[0].items():
            if tensor.is_floating_point():
                tensor.copy_(torch.stack([s[name] for s in states]).mean(dim=0))
    return net.eval()
