"""What every recognizer offers: a trained run (:class:`~facecore.recognize.models.LoadedModel`),
an exported one (:class:`~facecore.recognize.onnx.OnnxModel`) and a gallery
(:class:`facecore.gallery.match.GalleryModel`) all implement :class:`Recognizer`, so evaluation,
the live recognizer and the pages use them alike instead of asking which one they hold.

The scores a recognizer gives, and so its threshold, are on one of two scales (its
:class:`ThresholdScale`): a trained run's are probabilities (or, for a run that decides Unknown by
embedding, a cosine already mapped onto the same 0..1 slider), a gallery's are cosine
similarities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from facecore.recognize.refs import RecognizerRef

if TYPE_CHECKING:
    import torch

    from facecore.recognize.results import ModelPrediction

#: ``score_kind`` of a trained run: softmax probabilities (the threshold is a probability).
PROBABILITY = "probability"
#: ``score_kind`` of a gallery: cosine similarities to the enrolled faces.
COSINE = "cosine"


@dataclass(frozen=True)
class ThresholdScale:
    """The scale a recognizer's threshold is on: its range and step for a slider, and its name."""

    kind: str
    low: float
    high: float
    step: float
    label: str

    def clamp(self, value: float) -> float:
        """``value`` moved into ``[low, high]``."""
        return min(self.high, max(self.low, float(value)))


#: The probability scale of a trained run (exported or not).
PROBABILITY_SCALE = ThresholdScale(PROBABILITY, 0.0, 1.0, 0.01, "Unknown below this confidence")
#: The cosine-similarity scale of a gallery: 0..1, since a threshold below 0 would name people from
#: faces less similar to theirs than unrelated faces are.
COSINE_SCALE = ThresholdScale(COSINE, 0.0, 1.0, 0.005, "Unknown below this similarity")
SCALES = {s.kind: s for s in (PROBABILITY_SCALE, COSINE_SCALE)}


class Nearest(Protocol):
    """The training (or enrolled) faces closest to a face's embedding."""

    def nearest(self, embedding: Any, k: int = 3) -> list[tuple[Path, str, float]]: ...


@runtime_checkable
class Recognizer(Protocol):
    """A loaded recognizer: faces in, a name (one of ``classes``, or Unknown) and a score out.

    ``ref`` is what loads it again (:class:`~facecore.recognize.refs.RecognizerRef`); ``run`` the
    name shown in tables; ``margin`` the crop margin its faces are cut with; ``threshold`` its own
    Unknown threshold, on :attr:`threshold_scale`.
    """

    ref: RecognizerRef
    run: str
    model_name: str
    classes: list[str]
    threshold: float
    margin: float
    score_kind: str
    needs_embeddings: bool
    device: torch.device

    @property
    def threshold_scale(self) -> ThresholdScale: ...

    def classify(self, crops: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, torch.Tensor]:
        """``(scores N x C, embeddings N x D)`` for a batch of RGB face crops."""
        ...

    def probabilities(self, crops: np.ndarray | Sequence[np.ndarray], *, int8: bool = False) -> np.ndarray:
        """The scores of :meth:`classify` alone."""
        ...

    def predictions(
        self, scores: np.ndarray, threshold: float | None = None, embeddings: Any = None
    ) -> list[ModelPrediction]:
        """One prediction per row of ``scores`` (``threshold`` None: the recognizer's own)."""
        ...

    def nearest_images(self) -> Nearest: ...

    def describe(self) -> str:
        """One line for people: what it is and what it knows."""
        ...


__all__ = [
    "COSINE",
    "COSINE_SCALE",
    "PROBABILITY",
    "PROBABILITY_SCALE",
    "SCALES",
    "Nearest",
    "Recognizer",
    "ThresholdScale",
]
