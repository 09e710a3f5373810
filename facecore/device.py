"""What the compute device is, in words (for the dashboard and `python -m facecore bench`)."""

from __future__ import annotations

import os

import torch


def device_summary() -> str:
    """E.g. ``CPU (2 cores, AVX2, 2 torch threads)`` or ``CUDA: NVIDIA H100 (80 GB)``."""
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"CUDA: {props.name} ({props.total_memory / 2**30:.0f} GB); training uses AMP"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "Apple MPS (Metal) GPU"
    cap = torch.backends.cpu.get_cpu_capability()
    return f"CPU ({os.cpu_count()} cores, {cap}, {torch.get_num_threads()} torch threads); no GPU found"
