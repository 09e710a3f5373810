"""Face detection and cropping.

Every public function takes and returns **RGB** ``uint8`` arrays of shape ``(H, W, 3)``;
conversion to OpenCV's BGR or to grey happens inside, at the boundary.

Detection and cropping are separate steps: a :class:`Detector` returns :class:`Detection`
records (box, score, landmarks, angle); :func:`crop_face` turns one into an upright square crop.

Detectors:

- ``yunet``: OpenCV's YuNet CNN (``cv2.FaceDetectorYN``); accurate; its small ``.onnx`` file ships
  in ``facecore/model_files/`` (:func:`download_yunet` fetches updates).
- ``haar``: OpenCV's frontal-face Haar cascade; ships with ``opencv-python<5``. When nothing is
  found upright it retries on rotated copies of the image, so tilted heads are found too.
- ``none``: the whole image is the face (for datasets that are already cropped).
- ``auto``: YuNet (the model that ships with facecore, or a downloaded update).
"""

from __future__ import annotations

import math
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from facecore.constants import CROP_MARGIN, CROP_SIZE
from facecore.download import download_file
from facecore.errors import DetectorError, DownloadError
from facecore.mode import require_writable
from facecore.pretrained import bundled_path
from facecore.workspace import detectors_dir

Box = tuple[int, int, int, int]
Point = tuple[float, float]

YUNET_URL = (
    "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
    "face_detection_yunet_2023mar.onnx"
)
YUNET_ENV = "FACECORE_YUNET"
YUNET_GLOB = "face_detection_yunet*.onnx"
DETECTOR_NAMES = ("auto", "haar", "yunet", "none")
HAAR_CASCADE = "haarcascade_frontalface_default.xml"

_YUNET_HOWTO = (
    "Get it with `python -m facecore detectors download`, or download {url} by hand and put "
    "it in {folder}/ (the detectors/ folder of FACECORE_HOME), or set {env} to its path."
)


# --------------------------------------------------------------------------------------------
# Records and the detector interface


@dataclass(frozen=True)
class Detection:
    """One face found in an image.

    ``box`` is ``(x, y, w, h)`` in pixels of the original image; it may extend past the image
    edges (faces cut by the border, faces found on a rotated copy). ``landmarks`` are YuNet's
    five points (right eye, left eye, nose tip, right and left mouth corner) as ``(x, y)``, or
    ``None``. ``angle`` is the rotation in degrees (OpenCV convention: positive is
    counter-clockwise) that was applied to the image when the face was found; rotating the image
    by it about the box centre makes the face upright, which is what :func:`crop_face` does.
    """

    box: Box
    score: float
    landmarks: tuple[Point, ...] | None = None
    angle: float = 0.0

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]

    @property
    def centre(self) -> Point:
        x, y, w, h = self.box
        return (x + w / 2.0, y + h / 2.0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "box": list(self.box),
            "score": self.score,
            "landmarks": None if self.landmarks is None else [list(p) for p in self.landmarks],
            "angle": self.angle,
        }


@runtime_checkable
class Detector(Protocol):
    """Anything with a ``name`` and a ``detect`` method."""

    name: str

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 HxWx3 image, best first (largest area x score)."""
        ...


def _rank(detections: list[Detection]) -> list[Detection]:
    return sorted(detections, key=lambda d: d.area * max(d.score, 0.0), reverse=True)


def _check_rgb(image_rgb: np.ndarray) -> np.ndarray:
    if not isinstance(image_rgb, np.ndarray):
        raise TypeError(f"Expected an RGB image as a numpy array, got {type(image_rgb).__name__}.")
    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(
            "Expected an RGB uint8 image of shape (H, W, 3), got "
            f"dtype {image_rgb.dtype} shape {image_rgb.shape}."
        )
    if image_rgb.shape[0] == 0 or image_rgb.shape[1] == 0:
        raise ValueError(f"The image is empty (shape {image_rgb.shape}).")
    return np.ascontiguousarray(image_rgb)


# --------------------------------------------------------------------------------------------
# Haar cascade with rotation retry


def _rotation_on_canvas(width: int, height: int, angle: float) -> tuple[np.ndarray, int, int]:
    """Affine matrix rotating by ``angle`` about the centre onto a canvas that holds it all."""
    cx, cy = width / 2.0, height / 2.0
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    new_w = int(math.ceil(height * sin + width * cos))
    new_h = int(math.ceil(height * cos + width * sin))
    m[0, 2] += new_w / 2.0 - cx
    m[1, 2] += new_h / 2.0 - cy
    return m, new_w, new_h


def rotate_expanded(image: np.ndarray, angle: float, *, border_value: int = 0) -> np.ndarray:
    """``image`` rotated by ``angle`` degrees (counter-clockwise) on a canvas that loses no corner.

    Returns the rotated image; :func:`rotation_matrix_expanded` gives the matching matrix.
    """
    h, w = image.shape[:2]
    m, new_w, new_h = _rotation_on_canvas(w, h, angle)
    return cv2.warpAffine(
        image,
        m,
        (new_w, new_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border_value,
    )


def rotation_matrix_expanded(width: int, height: int, angle: float) -> np.ndarray:
    """The 2x3 matrix :func:`rotate_expanded` applies to an image of that size."""
    return _rotation_on_canvas(width, height, angle)[0]


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
        image_rgb = _check_rgb(image_rgb)
        gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        min_side = max(1, int(round(self.min_size_ratio * min(h, w))))
        found = [Detection(box, score) for box, score in self._detect_gray(gray, min_side)]
        if found or not self.rotate:
            return _rank(found)
        for angle in self.angles:
            m, new_w, new_h = _rotation_on_canvas(w, h, angle)
            rotated = cv2.warpAffine(gray, m, (new_w, new_h), flags=cv2.INTER_LINEAR)
            inverse = cv2.invertAffineTransform(m)
            for (bx, by, bw, bh), score in self._detect_gray(rotated, min_side):
                cx, cy = inverse @ np.array([bx + bw / 2.0, by + bh / 2.0, 1.0])
                if not (0 <= cx < w and 0 <= cy < h):
                    continue  # found in the padding of the rotated canvas
                box = (int(round(cx - bw / 2.0)), int(round(cy - bh / 2.0)), bw, bh)
                found.append(Detection(box, score, angle=angle))
            if found:
                break
        return _rank(found)


# --------------------------------------------------------------------------------------------
# YuNet


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
        image_rgb = _check_rgb(image_rgb)
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
        return _rank(found)


# --------------------------------------------------------------------------------------------
# Whole image


class NoneDetector:
    """No detection: the whole image is one face (for already-cropped datasets)."""

    name = "none"

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        image_rgb = _check_rgb(image_rgb)
        h, w = image_rgb.shape[:2]
        return [Detection((0, 0, w, h), 1.0)]


# --------------------------------------------------------------------------------------------
# Finding, downloading and choosing detectors


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


# --------------------------------------------------------------------------------------------
# Cropping and box helpers


def _crop_matrix(centre: Point, angle: float, scale: float, size: int) -> np.ndarray:
    """Rotate by ``angle`` and scale by ``scale`` about ``centre`` (pixel-index coordinates),
    then move ``centre`` to the middle of a ``size`` x ``size`` output."""
    m = cv2.getRotationMatrix2D(centre, angle, scale)
    middle = (size - 1) / 2.0
    m[0, 2] += middle - centre[0]
    m[1, 2] += middle - centre[1]
    return m


def crop_face(
    image_rgb: np.ndarray, detection: Detection, *, margin: float = CROP_MARGIN, size: int = CROP_SIZE
) -> np.ndarray:
    """An upright ``size`` x ``size`` RGB uint8 crop around ``detection``.

    The square is centred on the box, with side ``max(w, h) * (1 + 2 * margin)``, rotated by
    ``detection.angle`` so the face is upright; parts outside the image repeat its edge pixels.
    """
    image_rgb = _check_rgb(image_rgb)
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}.")
    x, y, w, h = detection.box
    side = max(w, h, 1) * (1.0 + 2.0 * max(margin, 0.0))
    cx, cy = x + w / 2.0, y + h / 2.0  # continuous coordinates (pixel i spans [i, i + 1))
    scale = size / side
    source = image_rgb
    m = _crop_matrix((cx - 0.5, cy - 0.5), detection.angle, scale, size)
    if scale < 0.5:
        # Strong shrink: bilinear sampling would alias, so first shrink just the region the
        # crop reads with INTER_AREA, then warp at scale 1 (still one warpAffine).
        reach = side * math.sqrt(0.5) + 2.0
        ih, iw = image_rgb.shape[:2]
        x0, y0 = max(0, int(math.floor(cx - reach))), max(0, int(math.floor(cy - reach)))
        x1, y1 = min(iw, int(math.ceil(cx + reach))), min(ih, int(math.ceil(cy + reach)))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            roi = image_rgb[y0:y1, x0:x1]
            new_w = max(1, int(round((x1 - x0) * scale)))
            new_h = max(1, int(round((y1 - y0) * scale)))
            source = cv2.resize(roi, (new_w, new_h), interpolation=cv2.INTER_AREA)
            fx, fy = new_w / (x1 - x0), new_h / (y1 - y0)
            # Continuous c in the image is (c - origin) * f in the shrunk ROI.
            small_centre = ((cx - x0) * fx - 0.5, (cy - y0) * fy - 0.5)
            m = _crop_matrix(small_centre, detection.angle, scale / fx, size)
    return cv2.warpAffine(
        source, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def centre_crop(image_rgb: np.ndarray, *, size: int = 256) -> np.ndarray:
    """The largest centred square of the image, resized to ``size`` x ``size``."""
    image_rgb = _check_rgb(image_rgb)
    h, w = image_rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image_rgb[top : top + side, left : left + side]
    if side == size:
        return square.copy()
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes (0 when either is empty)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return float(inter / union) if union > 0 else 0.0


def match_boxes(
    truth: Sequence[Sequence[float]], found: Sequence[Sequence[float]], threshold: float = 0.5
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching by IoU, best pairs first: ``(truth index, found index)`` pairs
    with IoU >= ``threshold`` (how a detector is scored against labelled boxes)."""
    pairs = sorted(
        ((iou(t, d), i, j) for i, t in enumerate(truth) for j, d in enumerate(found)), reverse=True
    )
    used_t: set[int] = set()
    used_d: set[int] = set()
    out = []
    for value, i, j in pairs:
        if value < threshold:
            break
        if i not in used_t and j not in used_d:
            used_t.add(i)
            used_d.add(j)
            out.append((i, j))
    return out
