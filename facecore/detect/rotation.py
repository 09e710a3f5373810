"""Rotation: an image rotated onto a canvas that loses no corner, and the rotation retry of the
Haar detector (faces looked for on rotated copies, their boxes mapped back to the original)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from facecore.detect.detection import Box, Detection


def rotation_on_canvas(width: int, height: int, angle: float) -> tuple[np.ndarray, int, int]:
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
    m, new_w, new_h = rotation_on_canvas(w, h, angle)
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
    return rotation_on_canvas(width, height, angle)[0]


def detect_rotated(
    gray: np.ndarray, angles: Sequence[float], find: Callable[[np.ndarray], list[tuple[Box, float]]]
) -> list[Detection]:
    """Faces ``find`` gives on copies of ``gray`` rotated by each of ``angles`` in turn, up to the
    first angle that finds any: boxes in ``gray``'s pixels, each with the angle it was found at
    (faces found in the padding of the rotated canvas are dropped)."""
    h, w = gray.shape
    found: list[Detection] = []
    for angle in angles:
        m, new_w, new_h = rotation_on_canvas(w, h, angle)
        rotated = cv2.warpAffine(gray, m, (new_w, new_h), flags=cv2.INTER_LINEAR)
        inverse = cv2.invertAffineTransform(m)
        for (bx, by, bw, bh), score in find(rotated):
            cx, cy = inverse @ np.array([bx + bw / 2.0, by + bh / 2.0, 1.0])
            if not (0 <= cx < w and 0 <= cy < h):
                continue  # found in the padding of the rotated canvas
            box = (int(round(cx - bw / 2.0)), int(round(cy - bh / 2.0)), bw, bh)
            found.append(Detection(box, score, angle=angle))
        if found:
            break
    return found
