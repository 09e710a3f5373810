"""The training images closest to a face: :class:`NearestImages`, a cosine-similarity search
over the embeddings of a run's training images, computed once and cached in
``<run>/embeddings_train.pt``.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from facecore.data.dataset import load_dataset
from facecore.data.loaders import decode_crops
from facecore.errors import DatasetError
from facecore.workspace import atomic_write_bytes

EMBEDDINGS_FORMAT = "facecore.embeddings/1"
EMBEDDINGS_FILE = "embeddings_train.pt"
_EMBED_BATCH = 64


class TrainedRun(Protocol):
    """What :class:`NearestImages` needs of a loaded run
    (:class:`~facecore.recognize.models.LoadedModel`)."""

    path: Path
    mtime_ns: int

    @property
    def dataset_name(self) -> str | None: ...

    def classify(self, crops: Any) -> tuple[np.ndarray, torch.Tensor]: ...


def images_on_disk(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The nearest images (``{"file", ...}`` dicts) whose files are still there."""
    return [im for im in images if Path(im["file"]).is_file()]


class NearestImages:
    """Cosine-similarity search over the embeddings of a run's training images.

    Embeddings are computed once (in batches, ``inference_mode``) and cached in memory and in
    ``<run>/embeddings_train.pt`` (float16 tensor + file list, loaded with ``weights_only=True``);
    the file is recomputed when the train file list or the checkpoint (its modification time) changed.
    Raises :class:`DatasetError` when the run's dataset is not on this machine.
    """

    def __init__(self, loaded: TrainedRun) -> None:
        self.loaded = loaded
        dataset_name = loaded.dataset_name
        if not dataset_name:
            raise DatasetError(f"{loaded.path}: the checkpoint does not name its training dataset.")
        self.dataset = load_dataset(dataset_name)
        self._manifest_mtime = self._manifest_stamp()
        items = self.dataset.items("train")
        classes = self.dataset.classes
        self.files = [p.relative_to(self.dataset.path).as_posix() for p, _ in items]
        self.labels = [classes[i] for _, i in items]
        stem = loaded.path.stem
        name = EMBEDDINGS_FILE if stem == "best" else f"embeddings_train.{stem}.pt"
        self.cache_path = loaded.path.parent / name
        self.computed = False  # True when this instance computed the embeddings (not from disk)
        self.embeddings = self._load() if self.files else torch.zeros((0, 0), dtype=torch.float16)
        if self.embeddings is None:
            self.embeddings = self._compute()
            self.computed = True
            self._save()

    def _manifest_stamp(self) -> int:
        try:
            return (self.dataset.path / "manifest.csv").stat().st_mtime_ns
        except OSError:
            return -1

    def is_stale(self) -> bool:
        """True when the dataset's manifest changed since these embeddings were made."""
        return self._manifest_stamp() != self._manifest_mtime

    def _load(self) -> torch.Tensor | None:
        path = self.cache_path
        if not path.is_file():
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a damaged cache file is recomputed, never fatal
            return None
        if (
            not isinstance(data, dict)
            or data.get("format") != EMBEDDINGS_FORMAT
            or data.get("files") != self.files
            or data.get("checkpoint_mtime_ns") != self.loaded.mtime_ns
            or not isinstance(data.get("embeddings"), torch.Tensor)
            or data["embeddings"].shape[0] != len(self.files)
        ):
            return None
        return data["embeddings"]

    @torch.inference_mode()
    def _compute(self) -> torch.Tensor:
        paths = [self.dataset.path / f for f in self.files]
        chunks = []
        for start in range(0, len(paths), _EMBED_BATCH):
            _, emb = self.loaded.classify(decode_crops(paths[start : start + _EMBED_BATCH]))
            chunks.append(nn.functional.normalize(emb, dim=1).to(torch.float16))
        return torch.cat(chunks)

    def _save(self) -> None:
        payload = {
            "format": EMBEDDINGS_FORMAT,
            "checkpoint": self.loaded.path.name,
            "checkpoint_mtime_ns": self.loaded.mtime_ns,
            "dataset": self.dataset.name,
            "files": self.files,
            "labels": self.labels,
            "embeddings": self.embeddings,
        }
        buf = io.BytesIO()
        torch.save(payload, buf)
        with contextlib.suppress(OSError):  # a read-only run folder: keep them in memory only
            atomic_write_bytes(self.cache_path, buf.getvalue())

    def __len__(self) -> int:
        return len(self.files)

    def nearest(self, embedding: torch.Tensor | np.ndarray, k: int = 3) -> list[tuple[Path, str, float]]:
        """The ``k`` training images most similar to ``embedding``: ``(file, class, cosine)``."""
        if k <= 0 or not self.files:
            return []
        q = torch.as_tensor(embedding, dtype=torch.float32).reshape(-1)
        if q.shape[0] != self.embeddings.shape[1]:
            raise ValueError(f"Embedding of size {q.shape[0]} does not match {self.embeddings.shape[1]}.")
        q = nn.functional.normalize(q, dim=0)
        sims = torch.cat([chunk.float() @ q for chunk in self.embeddings.split(1024)])
        top = torch.topk(sims, min(k, len(self.files)))
        return [
            (self.dataset.path / self.files[i], self.labels[i], float(s))
            for s, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]
