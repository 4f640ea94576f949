"""Whether this CPU computes bfloat16 natively: training and interactive prediction use it there.

Native bfloat16 comes with the ``avx512_bf16`` or ``amx_bf16`` instruction sets (read from
``/proc/cpuinfo`` on Linux). Elsewhere torch emulates bfloat16, slower than float32, so both
stay in float32 there.
"""
from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["BF16_CPU_FLAGS", "cpu_has_native_bf16"]

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
