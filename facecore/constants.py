"""Settings the whole library shares, each defined once (no imports: any module may use them).

:data:`UNKNOWN` is the class of faces of people a model does not know; :data:`CROP_SIZE` and
:data:`CROP_MARGIN` are how datasets, galleries and the live recognizer crop a face (a square of
``CROP_SIZE`` pixels around the detected box grown by ``CROP_MARGIN`` of its side on every side);
:data:`SPLITS` are a dataset's splits; :data:`GALLERY_PREFIX` starts a gallery's reference
(``gallery:NAME``) where a trained run's name could stand (see :mod:`facecore.recognize.refs`).
"""

from __future__ import annotations

UNKNOWN = "Unknown"
CROP_SIZE = 256
CROP_MARGIN = 0.25
SPLITS = ("train", "val", "test")
GALLERY_PREFIX = "gallery:"

__all__ = ["CROP_MARGIN", "CROP_SIZE", "GALLERY_PREFIX", "SPLITS", "UNKNOWN"]
