"""What a recognizer says about faces: one :class:`ModelPrediction` per face and recognizer, and a
:class:`FacePrediction` per face (its box and every recognizer's prediction).

Open-set rule (as in :mod:`facecore.recognize.openset`): a face is named as its top class when that
class's score is at least the threshold and the class is not ``Unknown``; otherwise "Unknown".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facecore.constants import UNKNOWN
from facecore.recognize.openset import centroid_cosine


@dataclass
class ModelPrediction:
    """What one run says about one face.

    ``label`` is the top class, or "Unknown" when its confidence is below ``threshold`` or the
    top class is Unknown; ``raw_label`` is always the top class. ``confidence`` is the score the
    threshold applies to: the top class's probability, a run's centroid cosine, or a gallery's
    cosine similarity; ``top3`` holds probabilities (a gallery: similarities).
    """

    run: str
    model: str
    label: str
    raw_label: str
    confidence: float
    top3: list[tuple[str, float]]
    unknown: bool
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``top3`` as ``[{"label", "prob"}]``)."""
        return {
            "run": self.run,
            "model": self.model,
            "label": self.label,
            "raw_label": self.raw_label,
            "confidence": self.confidence,
            "top3": [{"label": c, "prob": p} for c, p in self.top3],
            "unknown": self.unknown,
            "threshold": self.threshold,
        }


@dataclass
class FacePrediction:
    """One face: where it is (from its :class:`Detection`) and each run's prediction.

    ``nearest`` (when asked for) holds, per run, ``{"run", "images": [{"file", "class",
    "similarity"}]}`` (plus ``"error"`` when that run's training images cannot be searched).
    """

    box: tuple[int, int, int, int]
    score: float
    landmarks: tuple[tuple[float, float], ...] | None
    predictions: list[ModelPrediction]
    nearest: list[dict[str, Any]] | None = None
    angle: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "box": [int(v) for v in self.box],
            "score": float(self.score),
            "landmarks": None
            if self.landmarks is None
            else [[float(x), float(y)] for x, y in self.landmarks],
            "angle": float(self.angle),
            "predictions": [p.to_dict() for p in self.predictions],
            "nearest": self.nearest,
        }


def make_predictions(
    run: str, model: str, classes: Sequence[str], table: np.ndarray, conf: np.ndarray, threshold: float
) -> list[ModelPrediction]:
    """One :class:`ModelPrediction` per row of ``table`` (per-class probabilities or similarities):
    its top class, named when the row's ``conf`` reaches ``threshold`` and the class is not Unknown."""
    out = []
    for row, score in zip(np.asarray(table, dtype=np.float64), conf, strict=True):
        order = np.argsort(-row, kind="stable")[:3]
        raw = classes[int(order[0])]
        unknown = raw == UNKNOWN or float(score) < threshold
        out.append(
            ModelPrediction(
                run=run,
                model=model,
                label=UNKNOWN if unknown else raw,
                raw_label=raw,
                confidence=float(score),
                top3=[(classes[int(i)], float(row[i])) for i in order],
                unknown=unknown,
                threshold=threshold,
            )
        )
    return out


def _floats(x: Any) -> np.ndarray:
    """A float32 array of a torch tensor (on any device) or of an array-like."""
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def run_predictions(
    model: Any, probs: np.ndarray, threshold: float | None = None, embeddings: Any = None
) -> list[ModelPrediction]:
    """A trained model's :class:`ModelPrediction` per row of ``probs`` (``threshold`` None: its own).

    The confidence compared with the threshold is the top class's probability, or, for a run whose
    score is ``centroid_cosine`` (``model.needs_embeddings``), the cosine of the face's embedding
    to that class's centroid (``model.centroids``). Used by PyTorch and ONNX runs alike.
    """
    t = model.threshold if threshold is None else float(threshold)
    probs = np.asarray(probs, dtype=np.float64)
    scores = probs.max(axis=1) if len(probs) else np.zeros(0)
    if model.needs_embeddings:
        if embeddings is None:
            raise ValueError(f"{model.run} decides Unknown by centroid cosine: pass the embeddings.")
        scores = centroid_cosine(_floats(embeddings), probs.argmax(axis=1), _floats(model.centroids))
    return make_predictions(model.run, model.model_name, model.classes, probs, scores, t)


__all__ = ["FacePrediction", "ModelPrediction", "make_predictions", "run_predictions"]
