"""Finding faces in live video: a detector fit for video, run on a scaled-down copy of each frame."""

from __future__ import annotations

import cv2
import numpy as np

from facecore.detect.detection import Detection, Detector
from facecore.detect.haar import HaarDetector
from facecore.detect.yunet import YuNetDetector, find_yunet_model
from facecore.errors import DetectorError
from facecore.live.config import DETECTORS
from facecore.recognize.results import FacePrediction


def live_detector(name: str = "auto") -> Detector:
    """A detector fit for video: YuNet (``auto``, its model ships with facecore), or Haar without
    rotation when asked for.

    ``name``: ``auto``, ``yunet`` or ``haar``. Haar's rotation retry costs up to a second per frame,
    so live video uses it upright only. Images are downscaled by :func:`detect_scaled` first.
    """
    key = name.strip().lower()
    if key not in DETECTORS:
        raise DetectorError(f"Live video uses the auto, yunet or haar detector, not {name!r}.")
    if key != "haar":
        return YuNetDetector(find_yunet_model())
    return HaarDetector(rotate=False)


def detect_scaled(detector: Detector, image_rgb: np.ndarray, side: int, max_faces: int) -> list[Detection]:
    """The best ``max_faces`` faces in an RGB frame, found on a copy scaled so its longer side is
    at most ``side``; boxes and landmarks in frame pixels."""
    h, w = image_rgb.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale >= 1.0:
        return detector.detect(image_rgb)[:max_faces]
    small = cv2.resize(
        image_rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    sx, sy = w / small.shape[1], h / small.shape[0]
    out = []
    for d in detector.detect(small)[:max_faces]:
        x, y, bw, bh = d.box
        box = (round(x * sx), round(y * sy), round(bw * sx), round(bh * sy))
        marks = None if d.landmarks is None else tuple((px * sx, py * sy) for px, py in d.landmarks)
        out.append(Detection(box, d.score, marks, d.angle))
    return out


def detection_of(face: FacePrediction) -> Detection:
    """The :class:`Detection` a recognised face came from (to classify it again on a newer frame)."""
    return Detection(face.box, face.score, face.landmarks, face.angle)


__all__ = ["detect_scaled", "detection_of", "live_detector"]
