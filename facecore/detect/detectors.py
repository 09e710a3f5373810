"""Face detectors by name: :func:`create_detector` builds one, :func:`list_detectors` names them.

Every public function takes and returns **RGB** ``uint8`` arrays of shape ``(H, W, 3)``;
conversion to OpenCV's BGR or to grey happens inside, at the boundary.

Detection and cropping are separate steps: a :class:`~facecore.detect.detection.Detector` returns
:class:`~facecore.detect.detection.Detection` records (box, score, landmarks, angle);
:func:`facecore.detect.crop.crop_face` turns one into an upright square crop.

Detectors:

- ``yunet``: OpenCV's YuNet CNN (:mod:`facecore.detect.yunet`); accurate; its small ``.onnx`` file
  ships in ``facecore/model_files/`` (:func:`~facecore.detect.yunet.download_yunet` fetches updates).
- ``haar``: OpenCV's frontal-face Haar cascade (:mod:`facecore.detect.haar`); ships with
  ``opencv-python<5``. When nothing is found upright it retries on rotated copies of the image
  (:mod:`facecore.detect.rotation`), so tilted heads are found too.
- ``none``: the whole image is the face (for datasets that are already cropped).
- ``auto``: YuNet (the model that ships with facecore, or a downloaded update).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facecore.detect.detection import Detection, Detector, check_rgb
from facecore.detect.haar import HaarDetector
from facecore.detect.yunet import YuNetDetector, find_yunet_model
from facecore.errors import DetectorError

DETECTOR_NAMES = ("auto", "haar", "yunet", "none")


class NoneDetector:
    """No detection: the whole image is one face (for already-cropped datasets)."""

    name = "none"

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        image_rgb = check_rgb(image_rgb)
        h, w = image_rgb.shape[:2]
        return [Detection((0, 0, w, h), 1.0)]


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return list(DETECTOR_NAMES)


def create_detector(
    name: str = "auto", *, yunet_model: str | Path | None = None, rotate: bool = True
) -> Detector:
    """Build a detector by name: ``auto``, ``haar``, ``yunet`` or ``none``.

    ``auto`` is YuNet: its model ships with facecore (see :func:`find_yunet_model`), and a
    missing or damaged model is an error, never a silent switch to Haar.
    ``rotate`` turns the Haar detector's rotation retry on or off.
    """
    key = (name or "").strip().lower()
    if key not in DETECTOR_NAMES:
        raise DetectorError(
            f"Unknown face detector {name!r}; choose one of: {', '.join(DETECTOR_NAMES)}."
        )
    if key == "none":
        return NoneDetector()
    if key == "haar":
        return HaarDetector(rotate=rotate)
    return YuNetDetector(find_yunet_model(yunet_model))


__all__ = ["DETECTOR_NAMES", "NoneDetector", "create_detector", "list_detectors"]
