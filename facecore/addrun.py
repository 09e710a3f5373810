"""Add a trained model from a checkpoint file (an upload, or ``python -m facecore runs add FILE``).

The file is never trusted: it is size-checked, loaded with ``weights_only=True`` (no code from a
pickle can run), rebuilt from its own config and class list with a strict state-dict load, and run
once on a blank image of its declared input size. Only then is it moved into place as
``models/<run>/best.pt`` with its ``config.json`` and ``summary.json``, by one rename of a staged
folder, so a refused file leaves ``models/`` exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch

from facecore import workspace
from facecore.checkpoint import load_checkpoint
from facecore.errors import CheckpointError, FacecoreError, RunError
from facecore.mode import require_writable

#: A ResNet50 checkpoint with its optimizer state is about 280 MB; nothing real is near 1 GB.
MAX_CHECKPOINT_BYTES = 1 << 30
#: Input sizes beyond this are refused before the model is run (a blank 4096^2 image is 200 MB).
MAX_INPUT_SIZE = 1024


def _refuse(label: str, why: str) -> CheckpointError:
    return CheckpointError(f"{label}: {why} Nothing was added; the saved runs are unchanged.")


def _check_classes(classes: Any, label: str) -> list[str]:
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise _refuse(label, "its class list is missing or not a list of names.")
    if len(set(classes)) != len(classes):
        raise _refuse(label, "its class list names a class twice.")
    return classes


def _validate(ckpt_file: Path, label: str) -> dict[str, Any]:
    """Everything :func:`add_run` checks; returns the loaded checkpoint."""
    from facecore.infer import load_run

    try:
        ckpt = load_checkpoint(ckpt_file)
    except CheckpointError as exc:
        raise _refuse(label, str(exc).replace(f"{ckpt_file}: ", "")) from exc
    classes = _check_classes(ckpt.get("classes"), label)
    config = ckpt.get("config")
    if not isinstance(config, dict) or config.get("model") != ckpt.get("model"):
        raise _refuse(label, "its config is missing or names another model than the checkpoint.")
    try:
        size = int(ckpt["preprocessing"]["input_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _refuse(label, "its preprocessing has no usable input size.") from exc
    if not 1 <= size <= MAX_INPUT_SIZE:
        raise _refuse(label, f"its input size {size} is outside 1..{MAX_INPUT_SIZE}.")
    try:
        loaded = load_run(ckpt_file, device="cpu")
    except FacecoreError as exc:
        raise _refuse(label, str(exc).replace(f"{ckpt_file.resolve()}: ", "")) from exc
    try:
        with torch.inference_mode():
            out = loaded.model(torch.zeros(1, 3, size, size))
    except RuntimeError as exc:
        raise _refuse(label, f"its model does not run on a {size}x{size} image ({exc}).") from exc
    if tuple(out.shape) != (1, len(classes)):
        scores = tuple(out.shape)
        raise _refuse(label, f"its model gives {scores} scores, not one per class ({len(classes)}).")
    return ckpt


def _free_name(base: str) -> str:
    root = workspace.models_dir()
    name = workspace.safe_name(base, what="run name")
    candidate, n = name, 2
    while (root / candidate).exists():
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def add_run(source: str | Path | bytes, *, name: str | None = None, label: str | None = None) -> Path:
    """Check the checkpoint ``source`` (a file path or its bytes) and add it as a run; return its folder.

    ``name``: the run name (default: the checkpoint's own run name, else ``<model>-added``; a name
    in use gets ``-2``, ``-3``...). ``label`` names the file in messages (e.g. the upload's name).
    Raises :class:`~facecore.errors.CheckpointError` naming the problem for a file that is too
    big, truncated, not a checkpoint, holds code or objects that safe loading refuses, or whose
    weights do not fit its architecture and class count.
    """
    require_writable("Adding a trained model")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data: bytes | None = bytes(source)
        size, label = len(data), label or "the uploaded file"
    else:
        path = Path(source)
        label = label or str(path)
        if not path.is_file():
            raise RunError(f"{label}: no such file.")
        data, size = None, path.stat().st_size
    if size == 0:
        raise _refuse(label, "the file is empty.")
    if size > MAX_CHECKPOINT_BYTES:
        limit = MAX_CHECKPOINT_BYTES >> 20
        raise _refuse(label, f"the file is {size / 2**20:.0f} MB; the limit is {limit} MB.")

    root = workspace.models_dir()
    root.mkdir(parents=True, exist_ok=True)
    staged = root / f".adding-{uuid.uuid4().hex[:12]}"
    staged.mkdir()
    try:
        ckpt_file = staged / "best.pt"
        if data is None:
            shutil.copyfile(Path(source), ckpt_file)
        else:
            ckpt_file.write_bytes(data)
        ckpt = _validate(ckpt_file, label)
        config = ckpt["config"]
        run = _free_name(name or str(config.get("run_name") or "") or f"{ckpt['model']}-added")
        metrics = ckpt.get("metrics") if isinstance(ckpt.get("metrics"), dict) else None
        summary = {
            "run": run,
            "model": ckpt["model"],
            "dataset": config.get("dataset"),
            "group": "",
            "classes": ckpt["classes"],
            "epochs_run": ckpt.get("epoch"),
            "best_epoch": ckpt.get("epoch"),
            "best": metrics,
            "added_from": label,
        }
        workspace.atomic_write_text(staged / "config.json", json.dumps(config, indent=2, default=str))
        workspace.atomic_write_text(staged / "summary.json", json.dumps(summary, indent=2, default=str))
        final = root / run
        os.rename(staged, final)  # fails rather than overwrite if the name was taken meanwhile
        return final
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
