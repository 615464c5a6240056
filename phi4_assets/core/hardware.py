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


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> str:
    """The torch device a policy runs on: ``auto`` is ``cuda`` where a GPU is visible, else
    ``cpu``; ``cuda`` without a visible GPU is an error, not a silent fallback to the CPU."""
    import torch

    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {name!r}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device = \"cuda\" but torch sees no GPU (torch.cuda.is_available() is False: a CPU "
                           "build of torch, or no visible device); set device = \"auto\" or \"cpu\"")
    return name


def preferred_dtype_name(device: str | None = None) -> str:
    """``bfloat16`` on a GPU or a CPU with native bf16, else ``float32``. ``device``: the resolved
    device the weights go to (default: a GPU if one is visible)."""
    import torch

    if device == "cuda" or (device is None and torch.cuda.is_available()):
        return "bfloat16"
    return "bfloat16" if cpu_has_fast_bf16() else "float32"
