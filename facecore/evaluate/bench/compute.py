"""Compute-bound rates: training steps and inference on random in-memory tensors, no data pipeline
(what the hardware allows)."""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from facecore.device import for_inference, inference_input, sync
from facecore.evaluate.bench.plan import Plan, median
from facecore.models.registry import create_model, get_model_spec
from facecore.models.resnet import split_frozen
from facecore.train.epoch import train_one_epoch
from facecore.train.hardware import autocast_for


def _step_rates(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager],
    scaler: torch.amp.GradScaler | None,
    channels_last: bool,
    warmup: int,
    steps: int,
) -> list[float]:
    """Images/s of each training step on the same in-memory batch, after ``warmup`` steps."""
    kw = {"device": device, "autocast": autocast, "scaler": scaler, "channels_last": channels_last}
    train_one_epoch(model, [(x, y)] * warmup, optimizer, **kw)
    sync(device)
    stamps = [time.perf_counter()]
    train_one_epoch(
        model, [(x, y)] * steps, optimizer, on_batch=lambda *_: stamps.append(time.perf_counter()), **kw
    )
    return [len(y) / (b - a) for a, b in zip(stamps, stamps[1:], strict=False)]


@torch.inference_mode()
def _infer_rates(
    model: nn.Module,
    x: torch.Tensor,
    runs: int,
    *,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> list[float]:
    model.eval()
    with autocast():
        model(x)  # warm-up
    rates = []
    for _ in range(runs):
        sync(device)
        t0 = time.perf_counter()
        with autocast():
            model(x)
        sync(device)
        rates.append(len(x) / (time.perf_counter() - t0))
    return rates


class ComputeBench:
    """``name`` on random in-memory tensors (no data pipeline): training steps and inference.

    For a model with a frozen trunk (``resnet50_pretrained``) the trainable head alone can be
    timed too, on in-memory trunk features: what training on cached features costs.
    """

    def __init__(
        self, name: str, *, classes: int, batch: int, device: torch.device, amp: str = "auto"
    ) -> None:
        spec = get_model_spec(name)
        self.device = device
        self.autocast, amp_name = autocast_for(device, amp)
        self.channels_last = device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" and amp_name == "fp16" else None
        torch.manual_seed(0)
        self.model = create_model(name, num_classes=classes, pretrained=False).to(device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.x = self._layout(torch.randn(batch, 3, spec.input_size, spec.input_size, device=device))
        self.y = torch.randint(0, classes, (batch,), device=device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=1e-4)
        self.kw = {
            "device": device,
            "autocast": self.autocast,
            "scaler": scaler,
            "channels_last": self.channels_last,
        }
        self.head: nn.Module | None = None
        parts = split_frozen(self.model)
        if parts is not None:
            trunk, self.head = parts
            trunk.eval()
            with torch.no_grad(), self.autocast():
                self.feats = trunk(self.x).float()
            head_params = [p for p in self.head.parameters() if p.requires_grad]
            self.head_optimizer = torch.optim.Adam(head_params, lr=1e-4)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def train_rates(self, plan: Plan) -> list[float]:
        """Images/s of each training step of the whole model (frozen parts included)."""
        return _step_rates(
            self.model, self.x, self.y, self.optimizer, warmup=plan.warmup, steps=plan.steps, **self.kw
        )

    def head_rates(self, plan: Plan) -> list[float]:
        """Images/s of each training step of the trainable head on trunk features."""
        if self.head is None:
            return []
        kw = {**self.kw, "channels_last": False}
        return _step_rates(
            self.head, self.feats, self.y, self.head_optimizer, warmup=plan.warmup, steps=plan.steps, **kw
        )

    def infer_rates(self, plan: Plan) -> dict[str, float]:
        """Inference images/s at batch 1 and 32, in the layout inference uses (:func:`for_inference`)."""
        kw = {"device": self.device, "autocast": self.autocast}
        model = for_inference(copy.deepcopy(self.model), self.device)
        x1 = inference_input(self.x[:1].contiguous(), self.device)
        xb = inference_input(torch.randn(32, *self.x.shape[1:], device=self.device), self.device)
        return {
            "infer_b1_img_s": median(_infer_rates(model, x1, plan.infer_b1, **kw)),
            "infer_b32_img_s": median(_infer_rates(model, xb, plan.infer_b32, **kw)),
        }


def rates(values: Sequence[float], key: str) -> dict[str, Any]:
    """``{key: median, key_steps: each value}``: a figure and the steps it is the median of."""
    return {key: median(values), f"{key}_steps": [round(v, 2) for v in values]}


__all__ = ["ComputeBench", "rates"]
