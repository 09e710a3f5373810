"""What a live recognizer publishes for one frame: :class:`LiveResult`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facecore.recognize.results import FacePrediction


@dataclass(frozen=True)
class LiveResult:
    """What the worker found in one frame: faces (each with one prediction per model) and timings."""

    seq: int
    faces: list[FacePrediction]
    submitted: float  # clock time the frame entered the buffer
    published: float  # clock time the result was ready
    detect_ms: float  # 0 when the boxes were reused
    inference_ms: dict[str, float]  # model display name -> milliseconds for this frame's batch
    detected: bool = True  # False: the previous result's boxes were reused on this frame

    def rows(self) -> list[dict[str, Any]]:
        """One row per face and model: ``face``, ``model``, ``name``, ``confidence`` (0-1)."""
        return [
            {"face": i + 1, "model": p.model, "name": p.label, "confidence": round(p.confidence, 3)}
            for i, face in enumerate(self.faces)
            for p in face.predictions
        ]


__all__ = ["LiveResult"]
