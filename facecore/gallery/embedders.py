"""Face embedders: face crops in, one L2-normalised vector per face out.

Three kinds, one interface (:class:`Embedder`), built by name with :func:`create_embedder`:

* ``dlib_resnet``: dlib's pretrained ResNet face descriptor (128-d, trained by dlib's author on
  about 3 million faces), aligned with dlib's 5-point landmark predictor as dlib expects. Its
  files come from the ``face-recognition-models`` package (or ``$FACECORE_DLIB_MODELS``); dlib
  itself from ``dlib-bin``. facecore does not train it.
* ``sface``: OpenCV Zoo's SFace (128-d), aligned with YuNet's 5 landmarks; its file ships in
  ``facecore/model_files/`` and is checked by sha256 (:mod:`facecore.pretrained`).
* ``run:<RUN>``: the penultimate-layer features of a run trained here (the three models), so a
  run can be used as a classifier (as before) or as an embedder against a gallery.

Input: face crops as made by :func:`facecore.detect.crop.crop_face` (RGB ``uint8`` squares, the face
box centred with :attr:`Embedder.margin` on each side), so the photo or frame is detected once;
an embedder only looks for landmarks inside the crop (dlib's predictor, or YuNet for SFace).
Colour order is **RGB** at this boundary.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from facecore.detect.yunet import find_yunet_model
from facecore.errors import EmbedderError, FacecoreError
from facecore.pretrained import bundled_path
from facecore.recognize.runs import list_runs

DLIB_NAME = "dlib_resnet"
SFACE_NAME = "sface"
#: the embedder of a new gallery: the better of the two pretrained ones on open-set accuracy at a
#: 1% false-accept rate (benchmarks/default_threshold.py, 2026-12-07: SFace 99.8%, dlib 97.9% of
#: 475 held-out LFW faces; README, "Galleries")
DEFAULT_EMBEDDER = SFACE_NAME
RUN_PREFIX = "run:"
DLIB_MODELS_ENV = "FACECORE_DLIB_MODELS"
DLIB_DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
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
# SFace


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
        for crop in _check_crops(crops):
            bgr = np.ascontiguousarray(crop[:, :, ::-1])
            out.append(recognizer.alignCrop(bgr, self.landmarks(bgr)))
        return out

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        faces = self.aligned(crops)
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        recognizer, _ = self._nets()
        return normalise(np.concatenate([recognizer.feature(f).reshape(1, -1) for f in faces]))


# --------------------------------------------------------------------------------------------
# trained runs


class RunEmbedder:
    """The penultimate-layer features of a run trained here (the embeddings of nearest images)."""

    default_threshold = 0.5
    default_threshold_source = (
        "no published default for a model trained here (0.5 cosine used); calibrate on strangers"
    )

    def __init__(self, run: str | Path, *, device: str = "auto") -> None:
        from facecore.recognize.models import load_run  # torch: only when a run is the embedder

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


def sface_problem() -> str | None:
    """Why the SFace embedder cannot be built here (its bundled file is missing or altered), or None."""
    try:
        bundled_path("sface")
    except FacecoreError as exc:
        return str(exc)
    return None


def list_embedders(*, runs: bool = True) -> list[EmbedderInfo]:
    """The pretrained embedders, then (``runs``) every trained run as ``run:<RUN>``."""
    problem = dlib_problem()
    sface = sface_problem()
    out = [
        EmbedderInfo(
            DLIB_NAME,
            "dlib ResNet face descriptor, 128-d, pretrained on about 3 million faces (aligned with "
            "dlib's 5-point landmarks)",
            trained_here=False,
            available=problem is None,
            problem=problem,
        ),
        EmbedderInfo(
            SFACE_NAME,
            "OpenCV Zoo SFace, 128-d, LFW 99.40% (aligned with YuNet's 5 landmarks; ships in "
            "facecore/model_files)",
            trained_here=False,
            available=sface is None,
            problem=sface,
        ),
    ]
    if runs:
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
    """The embedder called ``name`` (``dlib_resnet``, ``sface`` or ``run:<RUN>``), built once per process.

    A run's embedder is rebuilt when its checkpoint changed.
    """
    name = str(name).strip()
    with _CACHE_LOCK:
        hit = _CACHE.get(name)
        if hit is not None and not (isinstance(hit, RunEmbedder) and _stale(hit)):
            return hit
        if name == DLIB_NAME:
            emb: Embedder = DlibEmbedder()
        elif name == SFACE_NAME:
            emb = SFaceEmbedder()
        elif name.startswith(RUN_PREFIX) and len(name) > len(RUN_PREFIX):
            emb = RunEmbedder(name[len(RUN_PREFIX) :], device=device)
        else:
            raise EmbedderError(
                f"Unknown embedder {name!r}: choose {DLIB_NAME}, {SFACE_NAME}, or run:<RUN> for a "
                "trained run (python -m facecore gallery embedders lists them)."
            )
        _CACHE[name] = emb
        return emb


def _stale(emb: RunEmbedder) -> bool:
    try:
        return emb.loaded.path.stat().st_mtime_ns != emb.loaded.mtime_ns
    except OSError:
        return True


__all__ = [
    "DEFAULT_EMBEDDER",
    "DEFAULT_THRESHOLDS",
    "DLIB_NAME",
    "DlibEmbedder",
    "Embedder",
    "EmbedderInfo",
    "RunEmbedder",
    "SFACE_NAME",
    "SFaceEmbedder",
    "create_embedder",
    "dlib_problem",
    "list_embedders",
    "sface_problem",
    "normalise",
]
