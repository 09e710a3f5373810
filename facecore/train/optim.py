"""The optimizer and learning-rate schedule a :class:`~facecore.train.config.TrainConfig` names."""

from __future__ import annotations

import torch
from torch import nn

from facecore.train.config import TrainConfig

Scheduler = torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau


def make_optimizer(c: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """``c.optimizer`` over ``params`` with ``c``'s rate, weight decay and momentum."""
    if c.optimizer == "adam":
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "sgd":
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    return torch.optim.RMSprop(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)


def make_scheduler(c: TrainConfig, opt: torch.optim.Optimizer) -> Scheduler | None:
    """``c.schedule`` on ``opt`` (None for ``none``)."""
    if c.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=c.step_size, gamma=c.gamma)
    if c.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(c.epochs, 1))
    if c.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=c.gamma, patience=max(c.step_size - 1, 0)
        )
    return None


def step_scheduler(scheduler: Scheduler | None, val_loss: float) -> None:
    """Advance the schedule after an epoch (the plateau schedule watches the validation loss)."""
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()
