"""Mixed precision and memory layout for training: bfloat16 autocast where the hardware has it.

On CUDA the trainer autocasts to bfloat16 (float16 with a gradient scaler on older GPUs). On a
CPU it autocasts to bfloat16 only when the CPU computes it natively (the ``avx512_bf16`` or
``amx_bf16`` instruction sets, :func:`napari_ritm.model.precision.cpu_has_native_bf16`): on
other CPUs bfloat16 is emulated and slower than float32, so those train in float32
(benchmarks/train_speed.py measures both).
"""

from __future__ import annotations

import torch

from napari_ritm.model.precision import cpu_has_native_bf16

__all__ = ["autocast_dtype", "cpu_has_native_bf16"]


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
