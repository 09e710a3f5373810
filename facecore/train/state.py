"""Where a run stands, and what its checkpoints hold: ``best.pt`` the weights of the best epoch,
``last.pt`` the last finished epoch with all that resuming needs (optimizer, schedule, this state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facecore.data.dataset import FaceDataset
from facecore.data.transforms import preprocessing_dict
from facecore.errors import CheckpointError
from facecore.models.checkpoint import load_checkpoint
from facecore.models.registry import ModelSpec
from facecore.train.config import TrainConfig
from facecore.train.optim import Scheduler


@dataclass
class TrainState:
    """The last finished epoch, the best monitored value (lower is better), the epochs since it
    improved, and one metrics row per epoch."""

    epoch: int = 0
    best: float | None = None
    stale: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def improved(self, value: float) -> bool:
        """Record an epoch's monitored ``value``: True when it is the best so far."""
        if self.best is None or value < self.best - 1e-9:
            self.best, self.stale = value, 0
            return True
        self.stale += 1
        return False

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> TrainState:
        """The state saved in a ``last.pt``."""
        t = ckpt.get("trainer", {})
        return cls(
            epoch=int(ckpt["epoch"]),
            best=t.get("best"),
            stale=int(t.get("stale", 0)),
            history=list(t.get("history", [])),
        )


def epoch_payload(
    config: TrainConfig,
    spec: ModelSpec,
    dataset: FaceDataset,
    model: nn.Module,
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """A checkpoint of ``model`` after the epoch of ``metrics`` (enough to rebuild and use it)."""
    return {
        "model": config.model,
        "config": config.to_dict(),
        "classes": dataset.classes,
        "preprocessing": preprocessing_dict(spec),
        "threshold": 0.5,
        "metrics": {k: v for k, v in metrics.items() if k != "per_class_f1"},
        "epoch": metrics["epoch"],
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "dataset": {"name": dataset.name, "split_seed": dataset.meta.get("seed")},
    }


def resume_payload(
    optimizer: torch.optim.Optimizer, scheduler: Scheduler | None, state: TrainState
) -> dict[str, Any]:
    """What ``last.pt`` adds for resuming: the optimizer, the schedule and the :class:`TrainState`."""
    return {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "trainer": {"best": state.best, "stale": state.stale, "history": state.history},
    }


def load_for_resume(last: Path, model: str, classes: list[str]) -> dict[str, Any]:
    """``last.pt``, refused (:class:`CheckpointError`) when trained as another model or on other classes."""
    ckpt = load_checkpoint(last)
    if ckpt["model"] != model or ckpt["classes"] != classes:
        raise CheckpointError(f"{last}: it was trained as another model or on other classes; cannot resume.")
    return ckpt
