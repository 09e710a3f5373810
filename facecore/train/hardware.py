"""What the hardware decides once per run: mixed precision and the number of CPU threads."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import torch


def cpu_has_fast_bf16() -> bool:
    """True when the CPU runs bf16 matrix work natively (AVX512-BF16 or AMX)."""
    cap = torch.backends.cpu.get_cpu_capability().lower()
    return "amx" in cap or "avx512_bf16" in cap or "avx512bf16" in cap


def autocast_for(
    device: torch.device, amp: str
) -> tuple[Callable[[], contextlib.AbstractContextManager], str]:
    """A context factory for mixed precision and its name (``off``, ``bf16``, ``fp16``)."""
    use = amp == "on" or (
        amp == "auto" and (device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()))
    )
    if not use or device.type == "mps":
        return contextlib.nullcontext, "off"
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = torch.bfloat16
    name = "bf16" if dtype == torch.bfloat16 else "fp16"
    return (lambda: torch.autocast(device.type, dtype=dtype)), name


def set_threads(n: int | None = None) -> int:
    """Use ``n`` torch threads (default: every core) and return the number set."""
    n = n or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n
