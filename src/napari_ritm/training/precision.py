"""Mixed precision and memory layout for training: bfloat16 autocast where the hardware has it.

On CUDA the trainer autocasts to bfloat16 (float16 with a gradient scaler on older GPUs). On a
CPU it autocasts to bfloat16 only when the CPU computes it natively (the ``avx512_bf16`` or
``amx_bf16`` instruction sets, read from ``/proc/cpuinfo`` on Linux): on other CPUs bfloat16 is
emulated and slower than float32, so those train in float32. Measured on an AMD EPYC with
avx512_bf16 (h18s, batch 8, 1 thread): 4.3 samples/s at 192x192 in float32, 9.2 with bfloat16
and channels_last; losses stay within ~1 % of float32 (benchmarks/train_speed.py).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

#: CPU flags (as /proc/cpuinfo spells them) of instruction sets that compute bfloat16 natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (False when ``cpuinfo`` cannot be read)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(flag in flags for flag in BF16_CPU_FLAGS)
    return False


def autocast_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """The autocast dtype for training on ``device``, or None for float32.

    CUDA: bfloat16 where supported, else float16. CPU: bfloat16 when the CPU has it natively.
    """
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None
