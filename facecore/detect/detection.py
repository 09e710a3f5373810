"""Face detection records and the detector interface: a :class:`Detection` (box, score,
landmarks, angle), a :class:`Detector`, and the box arithmetic a detector is scored with (IoU,
greedy matching).

Images are **RGB** ``uint8`` arrays of shape ``(H, W, 3)`` (:func:`check_rgb`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

Box = tuple[int, int, int, int]
Point = tuple[float, float]


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


def rank_detections(detections: list[Detection]) -> list[Detection]:
    """Best first: largest area x score."""
    return sorted(detections, key=lambda d: d.area * max(d.score, 0.0), reverse=True)


def check_rgb(image_rgb: np.ndarray) -> np.ndarray:
    """``image_rgb`` as a contiguous RGB uint8 HxWx3 array; TypeError or ValueError when it is not one."""
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
