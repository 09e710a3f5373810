"""The ``run:<RUN>`` embedders: the penultimate-layer features of a run trained here, so a run can
be used as a classifier or as an embedder against a gallery (torch comes with the run)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facecore.errors import EmbedderError, FacecoreError
from facecore.gallery.embedders import RUN_PREFIX, check_crops, normalise


class RunEmbedder:
    """The penultimate-layer features of a run trained here (the embeddings of nearest images)."""

    default_threshold = 0.5
    default_threshold_source = (
        "no published default for a model trained here (0.5 cosine used); calibrate on strangers"
    )

    def __init__(self, run: str | Path, *, device: str = "auto") -> None:
        from facecore.recognize.models import load_run  # torch: only when a run is the embedder

        try:
            self.loaded = load_run(run, device=device)
        except FacecoreError as exc:
            raise EmbedderError(f"Run {run!s} cannot be used as an embedder: {exc}") from exc
        self.name = f"{RUN_PREFIX}{self.loaded.run}"
        self.margin = self.loaded.margin
        head = self.loaded._head
        self.dim = int(getattr(head, "in_features", 0)) or int(
            self.embed([np.zeros((64, 64, 3), np.uint8)]).shape[1]
        )

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "model": self.loaded.model_name,
            "checkpoint_bytes": self.loaded.path.stat().st_size,
            "checkpoint_mtime_ns": self.loaded.mtime_ns,
        }

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        items = check_crops(crops)
        if not items:
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        _, emb = self.loaded.classify(items)
        return normalise(emb.numpy())


def stale(emb: RunEmbedder) -> bool:
    """True when the run's checkpoint changed (or is gone) since ``emb`` loaded it."""
    try:
        return emb.loaded.path.stat().st_mtime_ns != emb.loaded.mtime_ns
    except OSError:
        return True
