"""Face crops as the recognizers take them: checked, made writable, and a run's own training faces.

:func:`_as_batch` validates crops (uint8 RGB), :func:`_writable` makes an array torch may wrap, and
:func:`training_crops` picks faces from a run's training split (for int8 calibration and for
checking an export).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from facecore.data.dataset import load_dataset
from facecore.data.images import load_rgb
from facecore.errors import FacecoreError, QuantizationError


def _as_batch(crops: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Validate face crops (uint8 ``N x H x W x 3`` array, or a sequence of ``H x W x 3``)."""
    items = list(crops) if not isinstance(crops, np.ndarray) or crops.ndim == 4 else [crops]
    for i, c in enumerate(items):
        if not isinstance(c, np.ndarray) or c.dtype != np.uint8 or c.ndim != 3 or c.shape[2] != 3:
            shape = getattr(c, "shape", None)
            raise ValueError(f"Face crop {i}: expected an RGB uint8 H x W x 3 array, got shape {shape}.")
        if c.shape[0] == 0 or c.shape[1] == 0:
            raise ValueError(f"Face crop {i} is empty (shape {c.shape}).")
    return items


def _writable(a: np.ndarray) -> np.ndarray:
    """``a`` as a contiguous array torch may wrap (decoded images can be read-only views)."""
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()


def training_crops(dataset_name: str | None, n: int, seed: int = 0) -> list[np.ndarray]:
    """Up to ``n`` face crops from the training split of ``dataset_name`` (spread over its classes)."""
    if not dataset_name:
        raise QuantizationError(
            "int8 calibrates on the run's training faces; the checkpoint names no dataset."
        )
    try:
        items = load_dataset(dataset_name).items("train")
    except FacecoreError as exc:
        raise QuantizationError(f"int8 calibrates on the run's training faces: {exc}") from exc
    if not items:
        raise QuantizationError(
            f"int8 calibrates on the run's training faces, but {dataset_name!r} has none."
        )
    chosen = random.Random(seed).sample(items, min(n, len(items)))
    return [load_rgb(path) for path, _ in chosen]


__all__ = ["training_crops"]
