"""Recognition against a gallery: cosine similarity to each person's enrolled faces.

:class:`Matcher` scores a batch of query embeddings against every person at once: one matrix
product (queries x enrolled faces), then each person's faces gathered through a padded index
table, so no Python loop runs over faces. A person's score is their best face (``max``) or the
mean of their 3 best (``top3``).

:class:`GalleryModel` puts a gallery and its embedder behind the same methods as a trained run's
:class:`~facecore.recognize.models.LoadedModel` (``classify``, ``probabilities``, ``predictions``,
``nearest_images``), so the photo upload, ``predict`` and the Live page use either.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facecore.constants import GALLERY_PREFIX
from facecore.errors import GalleryError, QuantizationError
from facecore.gallery.embedders import Embedder, normalise
from facecore.gallery.store import Gallery, gallery_embedder, gallery_path, gallery_stamp, load_gallery
from facecore.recognize.protocol import COSINE, COSINE_SCALE
from facecore.recognize.refs import GALLERY, RecognizerRef
from facecore.recognize.results import ModelPrediction, make_predictions


class Matcher:
    """Per-person similarity scores for query embeddings against a gallery's faces."""

    def __init__(
        self, embeddings: np.ndarray, person: Sequence[str], *, match: str = "max", k: int = 3
    ) -> None:
        self.people = sorted(set(person))
        self.match = match
        self.k = k
        n = len(person)
        self.gallery = torch.from_numpy(normalise(embeddings)) if n else torch.zeros((0, 0))
        index = {p: i for i, p in enumerate(self.people)}
        rows: list[list[int]] = [[] for _ in self.people]
        for j, p in enumerate(person):
            rows[index[p]].append(j)
        width = max((len(r) for r in rows), default=0)
        # Pad with column n, which holds -inf in the similarity matrix (see scores()).
        self._table = torch.tensor([r + [n] * (width - len(r)) for r in rows], dtype=torch.long).reshape(
            len(rows), width
        )
        self._count = torch.tensor([len(r) for r in rows], dtype=torch.float32)

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """``M x P`` scores (cosine, -1 to 1) for ``M`` query embeddings and the ``P`` people."""
        q = torch.from_numpy(normalise(np.asarray(queries, dtype=np.float32).reshape(len(queries), -1)))
        if not self.people or q.shape[0] == 0:
            return np.zeros((q.shape[0], len(self.people)), np.float32)
        if q.shape[1] != self.gallery.shape[1]:
            raise GalleryError(
                f"Query embeddings are {q.shape[1]}-d but the gallery's are {self.gallery.shape[1]}-d."
            )
        sims = q @ self.gallery.T  # M x N
        sims = torch.cat([sims, torch.full((sims.shape[0], 1), float("-inf"))], dim=1)
        per = sims[:, self._table]  # M x P x K
        if self.match == "max":
            return per.max(dim=2).values.numpy()
        k = min(self.k, per.shape[2])
        top = per.topk(k, dim=2).values
        used = torch.clamp(self._count, max=k)  # a person with fewer than k faces: mean of those
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        return (top.sum(dim=2) / used).numpy()

    def nearest_faces(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` enrolled faces most similar to one query: ``(index, cosine)``."""
        if k <= 0 or self.gallery.shape[0] == 0:
            return []
        q = torch.from_numpy(normalise(np.asarray(query, dtype=np.float32).reshape(1, -1)))[0]
        top = torch.topk(self.gallery @ q, min(k, self.gallery.shape[0]))
        return list(zip(top.indices.tolist(), top.values.tolist(), strict=True))


class _GalleryNearest:
    """The nearest enrolled faces, in the shape :class:`~facecore.recognize.nearest.NearestImages` answers."""

    def __init__(self, model: GalleryModel) -> None:
        self.model = model

    def nearest(self, embedding: Any, k: int = 3) -> list[tuple[Path, str, float]]:
        g = self.model.gallery
        found = self.model.matcher.nearest_faces(np.asarray(embedding), k)
        return [(g.path / g.files[i], g.person[i], s) for i, s in found]


class GalleryModel:
    """A gallery with its embedder, usable wherever a trained run is used for inference.

    Scores are cosine similarities, not probabilities: ``score_kind`` says so, and the
    threshold is the gallery's own (calibrated on strangers, or the embedder's default).
    """

    score_kind = COSINE
    threshold_scale = COSINE_SCALE
    device = torch.device("cpu")

    def __init__(self, gallery: Gallery, embedder: Embedder) -> None:
        if not gallery.files:
            raise GalleryError(
                f"Gallery {gallery.name!r} is empty: enroll someone first "
                f"(python -m facecore gallery enroll {gallery.name} --person NAME PHOTO...)."
            )
        self.gallery = gallery
        self.embedder = embedder
        self.matcher = Matcher(gallery.embeddings, gallery.person, match=gallery.match)
        self.classes = list(self.matcher.people)
        self.ref = RecognizerRef(GALLERY, gallery.name)
        self.run = str(self.ref)
        self.model_name = f"gallery ({embedder.name})"
        self.margin = float(embedder.margin)
        self.threshold = float(gallery.threshold)
        self.path = gallery.path

    def __repr__(self) -> str:
        return f"GalleryModel({self.gallery.name!r}, {self.embedder.name}, {len(self.classes)} people)"

    def describe(self) -> str:
        """E.g. ``gallery team: 3 people, 15 faces, dlib embeddings``."""
        faces = len(self.gallery.files)
        return f"{self.run}: {len(self.classes)} people, {faces} faces, {self.embedder.name} embeddings"

    def classify(self, crops: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, torch.Tensor]:
        """``(scores N x P, embeddings N x D)``."""
        emb = self.embedder.embed(
            list(crops) if not isinstance(crops, np.ndarray) or crops.ndim == 4 else [crops]
        )
        return self.matcher.scores(emb), torch.from_numpy(emb)

    def probabilities(self, crops: np.ndarray | Sequence[np.ndarray], *, int8: bool = False) -> np.ndarray:
        """The per-person scores (``int8`` does not apply to a gallery and is refused)."""
        if int8:
            raise QuantizationError("int8 applies to trained models; a gallery's embedder runs as it comes.")
        return self.classify(crops)[0]

    def int8_model(self) -> Any:
        raise QuantizationError("int8 applies to trained models, not to a gallery.")

    needs_embeddings = False

    def predictions(
        self, scores: np.ndarray, threshold: float | None = None, embeddings: Any = None
    ) -> list[ModelPrediction]:
        """A :class:`ModelPrediction` per row: the best person, or Unknown below the threshold."""
        t = self.threshold if threshold is None else float(threshold)
        scores = np.asarray(scores, dtype=np.float64)
        best = scores.max(axis=1) if len(scores) else np.zeros(0)
        return make_predictions(self.run, self.model_name, self.classes, scores, best, t)

    def nearest_images(self) -> _GalleryNearest:
        return _GalleryNearest(self)


_CACHE: dict[str, tuple[float, Gallery]] = {}
_CACHE_LOCK = threading.Lock()


def load_gallery_model(name: str, *, embedder: str | Embedder | None = None) -> GalleryModel:
    """A :class:`GalleryModel` for gallery ``name`` (``gallery:`` prefix allowed).

    The gallery is read once and kept while its files are unchanged; each call returns a new
    model object, so a page may change its ``threshold`` without touching another session's.
    """
    name = str(name).removeprefix(GALLERY_PREFIX)
    path = gallery_path(name)
    stamp = gallery_stamp(name)
    with _CACHE_LOCK:
        hit = _CACHE.get(str(path))
        if hit is None or hit[0] != stamp:
            hit = (stamp, load_gallery(name))
            _CACHE[str(path)] = hit
    gallery = hit[1]
    return GalleryModel(gallery, gallery_embedder(gallery, embedder))


__all__ = ["GALLERY_PREFIX", "GalleryModel", "Matcher", "load_gallery_model"]
