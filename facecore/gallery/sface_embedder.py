"""The ``sface`` embedder: OpenCV Zoo's SFace (128-d), aligned with YuNet's 5 landmarks; its
file ships in ``facecore/model_files/`` and is checked by sha256 (:mod:`facecore.pretrained`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from facecore.detect.yunet import find_yunet_model
from facecore.errors import EmbedderError, FacecoreError
from facecore.gallery.embedders import (
    SFACE_DEFAULT_SOURCE,
    SFACE_DEFAULT_THRESHOLD,
    SFACE_NAME,
    check_crops,
    normalise,
)
from facecore.pretrained import bundled_path

#: Where YuNet puts the 5 landmarks (eyes, nose tip, mouth corners) inside a face box, as shares
#: of the box side: the mean over 80 LFW crops (measured 2026-12-07). Used to align a crop in which
#: YuNet finds no face (none of those 80).
SFACE_TEMPLATE = np.array(
    [[0.3158, 0.3576], [0.6590, 0.3544], [0.4919, 0.5675], [0.3403, 0.7249], [0.6441, 0.7241]], np.float32
)


class SFaceEmbedder:
    """OpenCV Zoo's SFace (128-d, LFW 99.40%), aligned with YuNet's 5 landmarks, through OpenCV's
    ``FaceRecognizerSF``.

    The model file ships in ``facecore/model_files/`` and is checked (size, sha256) when the
    embedder is built. The face box inside a crop is known (centred, side ``size / (1 + 2 *
    margin)``): YuNet runs on the crop for the landmarks of the face nearest its centre, and
    ``alignCrop`` warps it to the 112x112 that SFace was trained on. Where YuNet finds no face in
    a crop, the landmarks come from :data:`SFACE_TEMPLATE` placed on the known box, and
    :attr:`template_aligned` counts those faces. OpenCV objects are per thread.
    """

    name = SFACE_NAME
    dim = 128
    margin = 0.25
    default_threshold = SFACE_DEFAULT_THRESHOLD
    default_threshold_source = SFACE_DEFAULT_SOURCE

    def __init__(self) -> None:
        try:
            self.model_path = bundled_path("sface")
            self.yunet_path = find_yunet_model()
        except FacecoreError as exc:
            raise EmbedderError(f"The {SFACE_NAME} embedder is not available: {exc}") from exc
        if not hasattr(cv2, "FaceRecognizerSF"):
            raise EmbedderError(f"This OpenCV build ({cv2.__version__}) has no cv2.FaceRecognizerSF.")
        self._local = threading.local()
        self.template_aligned = 0
        self._nets()  # load once now, so a broken file is reported at once

    def _nets(self) -> tuple[Any, Any]:
        nets = getattr(self._local, "nets", None)
        if nets is None:
            try:
                recognizer = cv2.FaceRecognizerSF.create(str(self.model_path), "")
                finder = cv2.FaceDetectorYN.create(str(self.yunet_path), "", (256, 256), 0.5, 0.3, 20)
            except cv2.error as exc:
                raise EmbedderError(f"OpenCV could not load {self.model_path.name}: {exc}") from exc
            nets = self._local.nets = (recognizer, finder)
        return nets

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "model": self.model_path.name}

    def landmarks(self, crop_bgr: np.ndarray) -> np.ndarray:
        """The YuNet face row (box, 5 landmarks, score) of the face centred in a BGR crop."""
        h, w = crop_bgr.shape[:2]
        side = min(h, w) / (1.0 + 2.0 * self.margin)
        x0, y0 = (w - side) / 2.0, (h - side) / 2.0
        _, finder = self._nets()
        finder.setInputSize((w, h))
        _, faces = finder.detect(crop_bgr)
        if faces is not None and len(faces):
            centre = np.array([w / 2.0, h / 2.0])
            dist = [np.hypot(*(f[:2] + f[2:4] / 2 - centre)) for f in faces]
            best = faces[int(np.argmin(dist))]
            if dist[int(np.argmin(dist))] < side / 2:
                return best.astype(np.float32)
        self.template_aligned += 1
        points = SFACE_TEMPLATE * side + np.array([x0, y0], np.float32)
        return np.concatenate([[x0, y0, side, side], points.reshape(-1), [1.0]]).astype(np.float32)

    def aligned(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The 112x112 BGR faces SFace sees."""
        recognizer, _ = self._nets()
        out = []
        for crop in check_crops(crops):
            bgr = np.ascontiguousarray(crop[:, :, ::-1])
            out.append(recognizer.alignCrop(bgr, self.landmarks(bgr)))
        return out

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        faces = self.aligned(crops)
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        recognizer, _ = self._nets()
        return normalise(np.concatenate([recognizer.feature(f).reshape(1, -1) for f in faces]))


def sface_problem() -> str | None:
    """Why the SFace embedder cannot be built here (its bundled file is missing or altered), or None."""
    try:
        bundled_path("sface")
    except FacecoreError as exc:
        return str(exc)
    return None
