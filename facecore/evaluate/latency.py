"""How long a trained model takes per image on this device, at batch 1 and 32 (random inputs)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn

from facecore.device import inference_input, sync

LATENCY_BATCHES = (1, 32)


@torch.inference_mode()
def measure_latency(
    model: nn.Module,
    input_size: int,
    device: torch.device,
    *,
    batches: Sequence[int] = LATENCY_BATCHES,
    budget_s: float = 4.0,
    max_runs: int = 15,
) -> dict[str, float]:
    """Milliseconds per image at each batch size: the median of timed runs after a warm-up.

    Inputs are random (latency does not depend on pixel values). Batch sizes are measured in
    increasing order, each within an equal share of ``budget_s``, up to ``max_runs`` timed runs:
    at least 3, or 1 when one run takes over a third of the share. A batch expected (from the
    smaller batch before it) to take over a third of the share is not warmed up again: the first
    batch size already warmed the model up, and a second slow pass would double the time.
    """
    model.eval()
    gen = torch.Generator().manual_seed(0)
    out: dict[str, float] = {}
    share = budget_s / max(len(batches), 1)
    per_image = 0.0
    for b in sorted(batches):
        x = inference_input(torch.randn(b, 3, input_size, input_size, generator=gen), device)
        if not per_image or per_image * b <= share / 3:
            for _ in range(2 if not per_image else 1):
                model(x)
            sync(device)
        times: list[float] = []
        t_end = time.perf_counter() + share
        while len(times) < max_runs:
            t0 = time.perf_counter()
            model(x)
            sync(device)
            now = time.perf_counter()
            times.append(now - t0)
            if t_end - now < times[-1] and (len(times) >= 3 or times[-1] > share / 3):
                break
        per_image = statistics.median(times) / b
        out[f"batch{b}"] = round(1000 * per_image, 4)
    return out


__all__ = ["LATENCY_BATCHES", "measure_latency"]
