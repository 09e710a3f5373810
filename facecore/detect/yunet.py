"""OpenCV's YuNet face detector (``cv2.FaceDetectorYN``, five landmarks per face): finding its
model file, loading it, and downloading an update.

Its small ``.onnx`` file ships in ``facecore/model_files/``; :func:`download_yunet` fetches
updates into the workspace's ``detectors/`` folder, which :func:`find_yunet_model` prefers.
"""

from __future__ import annotations

import os
import re
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from facecore.detect.detection import Detection, check_rgb, rank_detections
from facecore.download import download_file
from facecore.errors import DetectorError, DownloadError
from facecore.mode import require_writable
from facecore.pretrained import bundled_path
from facecore.workspace import detectors_dir

YUNET_URL = (
    "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
    "face_detection_yunet_2023mar.onnx"
)
YUNET_ENV = "FACECORE_YUNET"
YUNET_GLOB = "face_detection_yunet*.onnx"

_YUNET_HOWTO = (
    "Get it with `python -m facecore detectors download`, or download {url} by hand and put "
    "it in {folder}/ (the detectors/ folder of FACECORE_HOME), or set {env} to its path."
)


def _load_yunet(
    path: Path, score_threshold: float = 0.8, nms_threshold: float = 0.3
) -> cv2.FaceDetectorYN:
    if not path.is_file():
        raise DetectorError(
            f"The YuNet model {path} does not exist. "
            + _YUNET_HOWTO.format(url=YUNET_URL, folder=detectors_dir(), env=YUNET_ENV)
        )
    if path.stat().st_size == 0:
        raise DetectorError(f"The YuNet model {path} is empty; delete it and download it again.")
    if not hasattr(cv2, "FaceDetectorYN"):
        raise DetectorError(f"This OpenCV build ({cv2.__version__}) has no cv2.FaceDetectorYN.")
    try:
        return cv2.FaceDetectorYN.create(
            str(path), "", (320, 320), score_threshold, nms_threshold, 5000
        )
    except cv2.error as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        raise DetectorError(
            f"OpenCV could not load the YuNet model {path} ({detail}). The file may be corrupt "
            "or not a YuNet .onnx model; delete it and download it again."
        ) from exc


class YuNetDetector:
    """OpenCV's YuNet face detector (``cv2.FaceDetectorYN``), with five landmarks per face.

    Images whose longer side exceeds ``max_side`` are downscaled for detection, but a very long
    image (a panorama) keeps a short side of at least ``MIN_SHORT_SIDE`` pixels, within four
    times the pixels of a ``max_side`` square, so its faces do not shrink to nothing. Boxes and
    landmarks are returned in original-image pixels. Scores are in ``[0, 1]``.
    """

    #: the short side a downscaled image keeps (when the pixel budget allows)
    MIN_SHORT_SIDE = 160

    name = "yunet"

    def __init__(
        self,
        model_path: str | Path,
        *,
        score_threshold: float = 0.8,
        nms_threshold: float = 0.3,
        max_side: int = 640,
    ) -> None:
        self.model_path = Path(model_path)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = int(max_side)
        self._net = _load_yunet(self.model_path, score_threshold, nms_threshold)
        self._lock = threading.Lock()  # setInputSize + detect must not interleave

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 HxWx3 image, best first."""
        image_rgb = check_rgb(image_rgb)
        h, w = image_rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if min(h, w) * scale < self.MIN_SHORT_SIDE:
            budget = (4 * self.max_side**2 / (h * w)) ** 0.5
            scale = min(1.0, max(scale, min(self.MIN_SHORT_SIDE / min(h, w), budget)))
        bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
        if scale < 1.0:
            size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        sx, sy = w / bgr.shape[1], h / bgr.shape[0]  # exact factors back to the original
        with self._lock:
            self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, faces = self._net.detect(bgr)
        found: list[Detection] = []
        for row in faces if faces is not None else []:
            if not np.all(np.isfinite(row[:15])):  # degenerate output on extreme inputs
                continue
            x, y, bw, bh = row[0] * sx, row[1] * sy, row[2] * sx, row[3] * sy
            box = (int(round(x)), int(round(y)), int(round(bw)), int(round(bh)))
            points = tuple(
                (float(row[4 + 2 * i] * sx), float(row[5 + 2 * i] * sy)) for i in range(5)
            )
            found.append(Detection(box, float(row[14]), points))
        return rank_detections(found)


def find_yunet_model(explicit: str | Path | None = None) -> Path:
    """The YuNet model to use: ``explicit``, else ``$FACECORE_YUNET``, else the newest
    ``face_detection_yunet*.onnx`` in ``detectors_dir()`` (put there by ``detectors download``:
    an update), else the copy that ships in the package's ``facecore/model_files/`` (checked by
    size and sha256; :class:`~facecore.errors.ModelFileError` when it is damaged).

    An explicit path or the environment variable is returned even if the file is missing, so
    that the caller reports the mistake instead of silently using another detector.
    """
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    env = os.environ.get(YUNET_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    folder = detectors_dir()
    candidates = (
        [p for p in folder.glob(YUNET_GLOB) if p.is_file() and p.stat().st_size > 0]
        if folder.is_dir()
        else []
    )
    if candidates:
        return max(candidates, key=lambda p: (p.stat().st_mtime, p.name))
    return bundled_path("yunet")


def _yunet_file_name(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    if re.fullmatch(r"face_detection_yunet[\w.-]*\.onnx", name):
        return name
    return "face_detection_yunet.onnx"


def download_yunet(
    dest_dir: str | Path | None = None,
    *,
    url: str = YUNET_URL,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Download the YuNet model into ``dest_dir`` (default ``detectors_dir()``) and return its path.

    The file is checked to load with ``cv2.FaceDetectorYN`` before it is moved into place.
    Raises :class:`DownloadError` (saying where to put the file by hand) when it cannot.
    """
    require_writable("Downloading the YuNet model")
    folder = Path(dest_dir) if dest_dir is not None else detectors_dir()
    dest = folder / _yunet_file_name(url)

    def check(tmp: Path) -> None:
        try:
            _load_yunet(tmp)
        except DetectorError as exc:
            raise DownloadError(
                f"The file downloaded from {url} is not a usable model: {exc}"
            ) from exc

    try:
        return download_file(url, dest, progress=progress, check=check)
    except DownloadError as exc:
        raise DownloadError(
            f"{exc} To install the YuNet face detector by hand, download {url} on a machine "
            f"with internet access and put it at {dest} (or set {YUNET_ENV} to its path)."
        ) from exc
