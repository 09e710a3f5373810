"""Checkpoints: written atomically, loaded with ``weights_only=True``, enough to rebuild the model.

A checkpoint is a plain dict of tensors and JSON-like values::

    format          "facecore.checkpoint/1"
    model           registry name;   config: the whole TrainConfig as a dict
    classes         class names in label order
    preprocessing   input_size, resize_size, mean, std (the eval transform)
    threshold       the unknown threshold (max softmax below it -> "Unknown")
    metrics         summary of the epoch it was saved at;  epoch: that epoch (1-based)
    versions        torch, torchvision, facecore
    state_dict      the model's weights
    optimizer, scheduler, rng   (last.pt only: what resuming needs)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

import facecore
from facecore.errors import CheckpointError, FacecoreError
from facecore.models.registry import create_model
from facecore.workspace import atomic_write_bytes

FORMAT = "facecore.checkpoint/1"
REQUIRED = ("format", "model", "config", "classes", "preprocessing", "state_dict")


def versions() -> dict[str, str]:
    return {
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "facecore": facecore.__version__,
    }


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Serialise ``payload`` (plus format and versions) and write it atomically to ``path``."""
    data = {"format": FORMAT, "versions": versions(), **payload}
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    buf = io.BytesIO()
    torch.save(data, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (never falling back); check its shape."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to unpickle safely means: not a usable checkpoint
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a loadable facecore checkpoint (it is truncated, corrupt, or holds objects "
            f"that are refused when loading safely with weights_only=True: {first})."
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a facecore checkpoint (expected format {FORMAT!r}); it may be a bare "
            "state dict or another program's file."
        )
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: the checkpoint lacks {', '.join(missing)}.")
    return ckpt


def build_model(ckpt: dict[str, Any], *, path: str | Path = "checkpoint") -> nn.Module:
    """Rebuild the model from a loaded checkpoint alone (no ImageNet weights needed)."""
    config = ckpt["config"]
    classes = ckpt["classes"]
    try:
        model = create_model(
            ckpt["model"],
            num_classes=len(classes),
            pretrained=False,
            trainable_from=config.get("trainable_from"),
        )
    except FacecoreError as exc:
        raise CheckpointError(f"{path}: cannot rebuild its model ({exc}).") from exc
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        text = str(exc)
        detail = "size mismatch" if "size mismatch" in text else "missing or unexpected weights"
        raise CheckpointError(
            f"{path}: its weights do not fit a {ckpt['model']} with {len(classes)} classes "
            f"({detail}); the file belongs to another architecture or class list."
        ) from exc
    model.eval()
    return model


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(model in eval mode, checkpoint dict)`` from a checkpoint file or run folder."""
    ckpt = load_checkpoint(path)
    return build_model(ckpt, path=path), ckpt
