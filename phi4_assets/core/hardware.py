"""What this CPU can do fast. Detected, never assumed: CI machines may lack AMX/AVX-512 BF16."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def cpu_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """True where bf16 matmuls run natively (AMX-BF16 or AVX512-BF16)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def preferred_dtype_name() -> str:
    """``bfloat16`` on a GPU or a CPU with native bf16, else ``float32``."""
    import torch

    if torch.cuda.is_available():
        return "bfloat16"
    return "bfloat16" if cpu_has_fast_bf16() else "float32"
