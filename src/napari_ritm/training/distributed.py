"""Process-group setup for training: one process, or DDP under ``torchrun``.

``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK; with more than one process the group is
initialised here (nccl on CUDA, gloo on CPU) unless the caller already did.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """This process in the run: ``rank`` of ``world`` processes, its torch ``device``, and
    whether :func:`setup_distributed` created the process group (then the trainer destroys it)."""

    rank: int
    world: int
    device: torch.device
    owns_group: bool

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> DistContext:
    """Read the ``torchrun`` environment, pick the device (``cuda`` maps to LOCAL_RANK's GPU)
    and initialise the process group when there is more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank if world > 1 else torch.device(device).index or 0)
        dev = torch.device("cuda", torch.cuda.current_device())
    else:
        dev = torch.device(device)
    owns = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        owns = True
    return DistContext(rank, world, dev, owns)
