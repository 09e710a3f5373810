"""OpenCV's frontal-face Haar cascade (ships with ``opencv-python<5``), retried on rotated copies
of the image when nothing is found upright, so tilted heads are found too."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from facecore.detect.detection import Box, Detection, check_rgb, rank_detections
from facecore.detect.rotation import detect_rotated
from facecore.errors import DetectorError

HAAR_CASCADE = "haarcascade_frontalface_default.xml"


def _haar_cascade_path() -> Path:
    data = getattr(cv2, "data", None)
    folder = getattr(data, "haarcascades", None)
    if not hasattr(cv2, "CascadeClassifier") or not folder:
        raise DetectorError(
            f"This OpenCV build ({cv2.__version__}) has no Haar cascades (opencv-python 5 dropped "
            "them). Install 'opencv-python-headless<5' or use the YuNet detector."
        )
    return Path(folder) / HAAR_CASCADE


class HaarDetector:
    """OpenCV's frontal-face Haar cascade, retried on rotated copies when nothing is found.

    ``min_size_ratio`` is the smallest face side as a fraction of the image's shorter side.
    Scores are the cascade's level weights (unbounded; larger is more confident).
    """

    name = "haar"

    def __init__(
        self,
        *,
        rotate: bool = True,
        angles: Sequence[float] = (15, -15, 30, -30, 45, -45),
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size_ratio: float = 0.08,
        cascade_path: str | Path | None = None,
    ) -> None:
        path = Path(cascade_path) if cascade_path is not None else _haar_cascade_path()
        if not path.is_file() or path.stat().st_size == 0:
            raise DetectorError(
                f"The Haar cascade file {path} is missing or empty. Reinstall "
                "'opencv-python-headless<5' or use the YuNet detector."
            )
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise DetectorError(f"OpenCV could not load the Haar cascade {path}.")
        self.rotate = rotate
        self.angles = tuple(float(a) for a in angles)
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size_ratio = min_size_ratio
        self._lock = threading.Lock()  # a CascadeClassifier is not safe to share across threads

    def _detect_gray(self, gray: np.ndarray, min_side: int) -> list[tuple[Box, float]]:
        with self._lock:
            rects, _levels, weights = self._cascade.detectMultiScale3(
                gray,
                scaleFactor=self.scale_factor,
                minNeighbors=self.min_neighbors,
                minSize=(min_side, min_side),
                outputRejectLevels=True,
            )
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        out: list[tuple[Box, float]] = []
        for (x, y, w, h), score in zip(rects, weights, strict=True):
            out.append(((int(x), int(y), int(w), int(h)), float(score)))
        return out

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 HxWx3 image, best first."""
        image_rgb = check_rgb(image_rgb)
        gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        min_side = max(1, int(round(self.min_size_ratio * min(h, w))))
        found = [Detection(box, score) for box, score in self._detect_gray(gray, min_side)]
        if found or not self.rotate:
            return rank_detections(found)
        return rank_detections(detect_rotated(gray, self.angles, lambda g: self._detect_gray(g, min_side)))
