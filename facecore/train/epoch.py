"""One epoch of training and one evaluation: plain functions that return metric dicts.

:class:`~facecore.train.loop.Trainer` calls them every epoch; the benchmarks call
:func:`train_one_epoch` on its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn


def to_device(
    x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch on ``device`` (images channels-last when asked)."""
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    scaler: torch.amp.GradScaler | None = None,
    channels_last: bool = False,
    on_batch: Callable[[int, int, float], None] | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; returns loss, accuracy, images and seconds."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total_loss, correct, seen = 0.0, 0, 0
    batches = len(loader)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        x, y = to_device(x, y, device, channels_last)
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            logits = model(x)
            loss = loss_fn(logits.float(), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        n = y.shape[0]
        total_loss += loss.item() * n
        correct += (logits.argmax(1) == y).sum().item()
        seen += n
        if on_batch:
            on_batch(i + 1, batches, total_loss / seen)
    seconds = time.perf_counter() - t0
    return {
        "loss": total_loss / max(seen, 1),
        "accuracy": correct / max(seen, 1),
        "images": seen,
        "seconds": seconds,
    }


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    device: torch.device,
    num_classes: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    channels_last: bool = False,
) -> dict[str, Any]:
    """Loss, accuracy, macro F1, per-class F1, and the softmax probabilities and labels."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, probs, labels = 0.0, [], []
    for x, y in loader:
        x, y = to_device(x, y, device, channels_last)
        with autocast():
            logits = model(x).float()
        total_loss += loss_fn(logits, y).item()
        probs.append(torch.softmax(logits, 1).cpu())
        labels.append(y.cpu())
    p = torch.cat(probs).numpy() if probs else np.zeros((0, num_classes))
    t = torch.cat(labels).numpy() if labels else np.zeros(0, dtype=int)
    return eval_metrics(p, t, total_loss, num_classes)


def eval_metrics(p: np.ndarray, t: np.ndarray, total_loss: float, num_classes: int) -> dict[str, Any]:
    """:func:`evaluate`'s metrics from the probabilities, labels and summed loss of a whole split."""
    pred = p.argmax(1) if len(p) else np.zeros(0, dtype=int)
    f1 = f1_score(t, pred, labels=list(range(num_classes)), average=None, zero_division=0)
    return {
        "loss": total_loss / max(len(t), 1),
        "accuracy": float((pred == t).mean()) if len(t) else 0.0,
        "macro_f1": float(f1_score(t, pred, average="macro", labels=sorted(set(t)), zero_division=0))
        if len(t)
        else 0.0,
        "per_class_f1": [float(v) for v in f1],
        "probs": p,
        "labels": t,
    }
