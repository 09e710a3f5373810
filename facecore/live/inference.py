"""Inference: detect faces in a photo, crop them as the datasets were cropped, and classify them.

* :class:`Predictor` runs one detector and one or more recognizers (trained runs, exported runs,
  ``gallery:NAME``) over an RGB image (:meth:`~Predictor.predict`) or over ready crops
  (:meth:`~Predictor.predict_crops`), and returns one :class:`FacePrediction` per face with one
  :class:`ModelPrediction` per recognizer.
* Loading runs (:func:`~facecore.recognize.models.load_run`,
  :func:`~facecore.recognize.models.load_recognizer`) and the prediction types
  (:mod:`facecore.recognize.results`) sit below, in :mod:`facecore.recognize`.

Open-set rule (as in :mod:`facecore.recognize.openset`): a face is named as its top class when that class's
probability is at least the threshold and the class is not ``Unknown``; otherwise "Unknown".
Images are handled in memory only; nothing about the photo is written to disk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import facecore.gallery  # noqa: F401  # registers gallery:NAME with facecore.recognize (load_recognizer)
from facecore.constants import CROP_SIZE
from facecore.detect.crop import crop_face
from facecore.detect.detection import Detection, Detector
from facecore.detect.detectors import create_detector
from facecore.errors import ConfigError, FacecoreError
from facecore.recognize.crops import _as_batch
from facecore.recognize.models import load_recognizer
from facecore.recognize.protocol import PROBABILITY, Recognizer
from facecore.recognize.results import FacePrediction, ModelPrediction


class Predictor:
    """Detect, crop and classify faces with one or more trained runs.

    ``models``: run folders, run names or ``.pt`` files, or ``gallery:NAME``; ``detector``: a name for
    :func:`~facecore.detect.detectors.create_detector` or a :class:`Detector`; ``threshold``: None uses
    each run's calibrated threshold, a number overrides it for all runs; ``max_faces``: the
    best-ranked faces kept per image.
    """

    def __init__(
        self,
        models: Sequence[str | Path],
        *,
        detector: str | Detector = "auto",
        threshold: float | None = None,
        max_faces: int = 20,
        device: str = "auto",
    ) -> None:
        if isinstance(models, (str, Path)):
            models = [models]
        if not models:
            raise ConfigError("Choose at least one trained run to predict with.")
        if threshold is not None:
            try:
                ok = math.isfinite(float(threshold))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ConfigError(f"The threshold must be a finite number, got {threshold!r}.")
        if max_faces < 1:
            raise ConfigError(f"max_faces must be at least 1, got {max_faces}.")
        self.models = [load_recognizer(m, device=device) for m in models]
        self.detector = create_detector(detector) if isinstance(detector, str) else detector
        self.threshold = None if threshold is None else float(threshold)
        self.max_faces = int(max_faces)

    def threshold_for(self, model: Recognizer) -> float:
        """The threshold applied to ``model``: the override (for probabilities), else its own."""
        return self.threshold if self._overrides(model) else model.threshold

    def _overrides(self, model: Recognizer) -> bool:
        return self.threshold is not None and model.threshold_scale.kind == PROBABILITY

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """The faces to classify: the detector's best ``max_faces``."""
        return self.detector.detect(image_rgb)[: self.max_faces]

    def predict(self, image_rgb: np.ndarray, *, nearest: int = 0) -> list[FacePrediction]:
        """One :class:`FacePrediction` per detected face (best first) in an RGB uint8 image.

        ``nearest`` > 0 also fills :attr:`FacePrediction.nearest` with that many training images.
        """
        detections = self.detect(image_rgb)
        if not detections:
            return []
        crops: dict[float, np.ndarray] = {}
        for margin in sorted({m.margin for m in self.models}):
            crops[margin] = np.stack(
                [crop_face(image_rgb, d, margin=margin, size=CROP_SIZE) for d in detections]
            )
        return self._run(detections, lambda m: crops[m.margin], nearest)

    def predict_crops(
        self, crops: np.ndarray | Sequence[np.ndarray], *, nearest: int = 0
    ) -> list[FacePrediction]:
        """Predictions for ready face crops (e.g. 256x256, cropped like the datasets).

        Each result's box is the whole crop, with score 1.
        """
        items = _as_batch(crops)
        detections = [Detection((0, 0, int(c.shape[1]), int(c.shape[0])), 1.0) for c in items]
        return self._run(detections, lambda _m: items, nearest) if items else []

    def _run(self, detections: list[Detection], crops_for: Any, nearest: int) -> list[FacePrediction]:
        results: dict[int, tuple[list[ModelPrediction], torch.Tensor]] = {}
        for m in self.models:
            if id(m) not in results:  # the same run listed twice is run once
                probs, emb = m.classify(crops_for(m))
                results[id(m)] = (m.predictions(probs, self.threshold_for(m), emb), emb)
        faces = []
        for i, det in enumerate(detections):
            face = FacePrediction(
                box=tuple(int(v) for v in det.box),  # type: ignore[arg-type]
                score=float(det.score),
                landmarks=det.landmarks,
                predictions=[results[id(m)][0][i] for m in self.models],
                angle=float(det.angle),
            )
            if nearest > 0:
                face.nearest = [self._nearest(m, results[id(m)][1][i], nearest) for m in self.models]
            faces.append(face)
        return faces

    @staticmethod
    def _nearest(m: Recognizer, emb: torch.Tensor, k: int) -> dict[str, Any]:
        try:
            found = m.nearest_images().nearest(emb, k)
        except FacecoreError as exc:
            return {"run": m.run, "images": [], "error": str(exc)}
        return {
            "run": m.run,
            "images": [{"file": str(f), "class": c, "similarity": s} for f, c, s in found],
        }


__all__ = ["Predictor"]
