"""Add a trained model from a checkpoint file (an upload, or ``python -m facecore runs add FILE``).

The file is never trusted: it is size-checked, loaded with ``weights_only=True`` (no code from a
pickle can run), rebuilt from its own config and class list with a strict state-dict load, and run
once on a blank image of its declared input size. Only then is it moved into place as
``models/<run>/best.pt`` with its ``config.json`` and ``summary.json``, by one rename of a staged
folder, so a refused file leaves ``models/`` exactly as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import torch

from facecore import workspace
from facecore.data.transforms import eval_transform_from_dict
from facecore.errors import CheckpointError, FacecoreError, RunError
from facecore.mode import require_writable
from facecore.models.checkpoint import build_model, load_checkpoint

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
    try:
        ckpt = load_checkpoint(ckpt_file)
    except CheckpointError as exc:
        raise _refuse(label, str(exc).replace(f"{ckpt_file}: ", "")) from exc
    try:
        return _check_contents(ckpt, ckpt_file, label)
    except CheckpointError:
        raise
    except Exception as exc:  # a crafted file can break any step: refuse it, never crash the caller
        why = f"{type(exc).__name__}: {exc}"
        raise _refuse(label, f"its contents do not make a usable model ({why}).") from exc


def _check_contents(ckpt: dict[str, Any], ckpt_file: Path, label: str) -> dict[str, Any]:
    if not isinstance(ckpt.get("model"), str):
        raise _refuse(label, "it does not name its model.")
    classes = _check_classes(ckpt.get("classes"), label)
    config = ckpt.get("config")
    if not isinstance(config, dict) or config.get("model") != ckpt["model"]:
        raise _refuse(label, "its config is missing or names another model than the checkpoint.")
    for key in ("dataset", "run_name", "group"):
        if config.get(key) is not None and not isinstance(config[key], str):
            raise _refuse(label, f"its config's {key!r} is not a name.")
    threshold = ckpt.get("threshold")
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0.0 <= float(threshold) <= 1.0):
        raise _refuse(label, f"its unknown threshold {threshold!r} is not a number from 0 to 1.")
    pre = ckpt.get("preprocessing")
    try:
        size, resize = int(pre["input_size"]), int(pre["resize_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _refuse(label, "its preprocessing has no usable input size.") from exc
    if not (1 <= size <= MAX_INPUT_SIZE and 1 <= resize <= 2 * MAX_INPUT_SIZE):
        raise _refuse(label, f"its input size {size} (resize {resize}) is outside 1..{MAX_INPUT_SIZE}.")
    try:
        eval_transform_from_dict(pre)
        model = build_model(ckpt, path=ckpt_file)
    except FacecoreError as exc:
        raise _refuse(label, str(exc).replace(f"{ckpt_file}: ", "")) from exc
    try:
        with torch.inference_mode():
            out = model(torch.zeros(1, 3, size, size))
    except RuntimeError as exc:
        raise _refuse(label, f"its model does not run on a {size}x{size} image ({exc}).") from exc
    if tuple(out.shape) != (1, len(classes)):
        scores = tuple(out.shape)
        raise _refuse(label, f"its model gives {scores} scores, not one per class ({len(classes)}).")
    json.dumps(config)  # plain JSON, or refused above (TypeError)
    return ckpt


def _claim(base: str) -> Path:
    """Create and return a new, empty run folder named ``base`` (``-2``, ``-3``... when taken).

    ``mkdir`` is the claim: a trainer starting at the same moment can never get the same folder.
    """
    root = workspace.models_dir()
    try:
        name = workspace.safe_name(base, what="run name")
    except FacecoreError:
        name = "added-model"
    candidate, n = name, 2
    while True:
        try:
            if candidate in workspace.RESERVED_RUN_NAMES:
                raise FileExistsError(candidate)
            (root / candidate).mkdir()
            return root / candidate
        except FileExistsError:
            candidate, n = f"{name}-{n}", n + 1


def _tidy(root: Path, max_age_s: float = 3600.0) -> None:
    """Remove ``.adding-*`` folders an interrupted add left behind (older than ``max_age_s``)."""
    now = time.time()
    for old in root.glob(".adding-*"):
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > max_age_s:
                shutil.rmtree(old, ignore_errors=True)


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
    _tidy(root)
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
        metrics = ckpt.get("metrics") if isinstance(ckpt.get("metrics"), dict) else None
        summary = {
            "model": ckpt["model"],
            "dataset": config.get("dataset"),
            "group": "",
            "classes": ckpt["classes"],
            "epochs_run": ckpt.get("epoch"),
            "best_epoch": ckpt.get("epoch"),
            "best": metrics,
            "added_from": label,
        }
        if ckpt.get("threshold") is not None:  # what the Live page's slider starts from
            info = ckpt.get("threshold_info") if isinstance(ckpt.get("threshold_info"), dict) else {}
            summary["threshold"] = {**info, "threshold": float(ckpt["threshold"])}
        workspace.atomic_write_text(staged / "config.json", json.dumps(config, indent=2))
        final = _claim(name or str(config.get("run_name") or "") or f"{ckpt['model']}-added")
        summary["run"] = final.name
        workspace.atomic_write_text(staged / "summary.json", json.dumps(summary, indent=2, default=str))
        try:  # the claimed (empty) folder is replaced whole by the checked files: one rename
            with workspace.staged_folder(final, lock_what="run name") as assembled:
                for item in ("best.pt", "config.json", "summary.json"):
                    os.rename(staged / item, assembled / item)
        except OSError as exc:
            shutil.rmtree(final, ignore_errors=True)
            raise RunError(f"{label}: could not be stored in {final} ({exc}); nothing was added.") from exc
        return final
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
