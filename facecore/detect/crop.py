"""Cropping faces: an upright square around a :class:`~facecore.detect.detection.Detection`, or
the centre of an image. Images are **RGB** ``uint8`` arrays of shape ``(H, W, 3)``."""

from __future__ import annotations

import math

import cv2
import numpy as np

from facecore.constants import CROP_MARGIN, CROP_SIZE
from facecore.detect.detection import Detection, Point, check_rgb


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
    image_rgb = check_rgb(image_rgb)
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
    image_rgb = check_rgb(image_rgb)
    h, w = image_rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image_rgb[top : top + side, left : left + side]
    if side == size:
        return square.copy()
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)
