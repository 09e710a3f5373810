"""Trained runs loaded for inference, shared by evaluation, galleries and the live recognizer.

* :func:`load_run` loads a trained run once (cached per checkpoint file and modification time)
  as a :class:`LoadedModel`, whose :meth:`~LoadedModel.classify` turns a batch of face crops
  into softmax probabilities and penultimate-layer embeddings in one forward pass; an exported
  ``.onnx`` gives a :class:`~facecore.recognize.onnx.OnnxModel` with the same methods.
* :func:`load_recognizer` loads what a :class:`~facecore.recognize.refs.RecognizerRef` names: a run,
  or (``gallery:NAME``) whatever the kind's registered loader gives; :func:`model_stamp` says when
  it changed on disk.
* :class:`~facecore.recognize.nearest.NearestImages` (:meth:`LoadedModel.nearest_images`) finds
  the training images closest to a face; the training embeddings are cached in
  ``<run>/embeddings_train.pt``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facecore.constants import CROP_MARGIN
from facecore.data.dataset import load_dataset
from facecore.data.transforms import eval_transform_from_dict
from facecore.device import for_inference, inference_input, resolve_device, tune_allocator
from facecore.errors import CheckpointError, FacecoreError, QuantizationError
from facecore.models.checkpoint import load_model
from facecore.models.quantize import CALIBRATION_IMAGES, calibration_batches, quantize_int8
from facecore.models.registry import classifier_head
from facecore.recognize.crops import _as_batch, _writable, training_crops
from facecore.recognize.nearest import NearestImages
from facecore.recognize.onnx import is_export, load_onnx
from facecore.recognize.openset import DEFAULT_THRESHOLD
from facecore.recognize.protocol import PROBABILITY, PROBABILITY_SCALE, Recognizer
from facecore.recognize.refs import RUN, RecognizerRef, recognizer_kind
from facecore.recognize.results import ModelPrediction, run_predictions
from facecore.workspace import models_dir


class LoadedModel:
    """A run ready for inference: model (eval mode, on ``device``), checkpoint, eval transform."""

    #: what :meth:`classify` scores are (a gallery's are ``cosine``): a threshold applies to one kind
    score_kind = PROBABILITY
    threshold_scale = PROBABILITY_SCALE

    def __init__(
        self,
        model: nn.Module,
        ckpt: dict[str, Any],
        transform: Any,
        device: torch.device,
        path: Path,
        mtime_ns: int | None = None,
    ) -> None:
        self.model = for_inference(model, device)
        self.ckpt = ckpt
        self.transform = transform
        self.device = device
        self.path = Path(path)
        #: the checkpoint file's modification time when it was loaded
        self.mtime_ns = self.path.stat().st_mtime_ns if mtime_ns is None else int(mtime_ns)
        self.classes: list[str] = list(ckpt["classes"])
        self.model_name: str = str(ckpt["model"])
        parent = self.path.parent.name
        self.run = parent if self.path.name == "best.pt" else f"{parent}/{self.path.name}"
        self.ref = RecognizerRef(RUN, str(self.path))
        threshold = ckpt.get("threshold")
        self.threshold = float(threshold) if threshold is not None else DEFAULT_THRESHOLD
        centroids = ckpt.get("centroids")
        #: the class centroids of the training faces' embeddings (unit rows), when training stored them
        stored = isinstance(centroids, torch.Tensor) and centroids.numel() > 0
        self.centroids = centroids.float() if stored else None
        #: the Unknown score the threshold applies to: ``max_softmax`` or ``centroid_cosine``
        self.score_name = str(ckpt.get("open_set_score") or "max_softmax")
        if self.score_name == "centroid_cosine" and self.centroids is None:
            self.score_name = "max_softmax"
        self._head = classifier_head(self.model)
        self._lock = threading.Lock()  # one classify() at a time: its embedding hook is per call
        self._nearest: NearestImages | None = None
        self._nearest_lock = threading.Lock()
        self._margin: float | None = None
        self._int8: nn.Module | None = None
        self._int8_error: str | None = None
        self._int8_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LoadedModel(run={self.run!r}, model={self.model_name!r}, classes={len(self.classes)})"

    def describe(self) -> str:
        """E.g. ``custom_cnn run cnn5: 6 classes, trained on lfw5``."""
        data = f", trained on {self.dataset_name}" if self.dataset_name else ""
        return f"{self.model_name} run {self.run}: {len(self.classes)} classes{data}"

    def _dataset_info(self) -> dict[str, Any]:
        info = self.ckpt.get("dataset")
        return info if isinstance(info, dict) else {}

    @property
    def dataset_name(self) -> str | None:
        """The dataset the run was trained on (from the checkpoint)."""
        config = self.ckpt.get("config")
        fallback = config.get("dataset") if isinstance(config, dict) else None
        return self._dataset_info().get("name") or fallback

    @property
    def margin(self) -> float:
        """The crop margin of the training dataset (its ``dataset.json``), else 0.25."""
        if self._margin is None:
            margin = self._dataset_info().get("margin")
            if margin is None and self.dataset_name:
                try:
                    margin = load_dataset(self.dataset_name).meta.get("margin")
                except FacecoreError:
                    margin = None
            self._margin = float(margin) if margin is not None else CROP_MARGIN
        return self._margin

    def preprocess(self, crops: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """Crops -> normalised float batch, each image through the same eval transform as training."""
        items = _as_batch(crops)
        if not items:
            size = int(self.ckpt["preprocessing"]["input_size"])
            return torch.zeros((0, 3, size, size))
        chw = [torch.from_numpy(_writable(c)).permute(2, 0, 1) for c in items]
        return torch.stack([self.transform(x) for x in chw])

    def classify(self, crops: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, torch.Tensor]:
        """``(softmax probabilities N x C, embeddings N x D on the CPU)`` in one forward pass."""
        x = self.preprocess(crops)
        if x.shape[0] == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32), torch.zeros((0, 0))
        captured: list[torch.Tensor] = []
        me = threading.get_ident()

        def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            if threading.get_ident() == me:  # probabilities() may run the model in other threads
                captured.append(inputs[0])

        with self._lock, torch.inference_mode():
            self.model.eval()
            handle = self._head.register_forward_hook(hook)
            try:
                logits = self.model(inference_input(x, self.device)).float()
            finally:
                handle.remove()
            probs = torch.softmax(logits, dim=1).cpu().numpy()
            emb = captured[-1].flatten(1).float().cpu()
        return probs, emb

    def int8_model(self) -> nn.Module:
        """An int8 copy of the model for CPU inference, built once and calibrated on the run's own
        training faces (:mod:`facecore.models.quantize`); raises :class:`FacecoreError` when it cannot be."""
        with self._int8_lock:
            if self._int8 is None:
                if self._int8_error:  # tried before: do not calibrate again for every recognizer
                    raise QuantizationError(self._int8_error)
                try:
                    self._int8 = self._make_int8()
                except FacecoreError as exc:
                    self._int8_error = str(exc)
                    raise
            return self._int8

    def _make_int8(self) -> nn.Module:
        if self.device.type != "cpu":
            raise QuantizationError(f"int8 inference is for the CPU; {self.run} runs on {self.device.type}.")
        batches = calibration_batches(training_crops(self.dataset_name, CALIBRATION_IMAGES), self.preprocess)
        with self._lock:  # no other thread is adding its forward hook while the model is copied
            float_copy = copy.deepcopy(self.model)
        return quantize_int8(float_copy, batches, inplace=True)

    def probabilities(self, crops: np.ndarray | Sequence[np.ndarray], *, int8: bool = False) -> np.ndarray:
        """Softmax probabilities (N x C) only: with ``int8``, from :meth:`int8_model`."""
        model = self.int8_model() if int8 else self.model
        x = self.preprocess(crops)
        if x.shape[0] == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        # no lock: without the embedding hook of classify(), threads may share the model
        with torch.inference_mode():
            x = x if int8 else inference_input(x, self.device)
            return torch.softmax(model(x).float(), dim=1).cpu().numpy()

    @property
    def needs_embeddings(self) -> bool:
        """True when the run decides Unknown by its embedding's cosine to the class centroid, so
        :meth:`predictions` needs the embeddings of :meth:`classify`."""
        return self.score_name == "centroid_cosine"

    def predictions(
        self, probs: np.ndarray, threshold: float | None = None, embeddings: Any = None
    ) -> list[ModelPrediction]:
        """One :class:`ModelPrediction` per row of ``probs`` (``threshold`` None: the run's own).

        The confidence compared with the threshold is the top class's probability, or, for a run
        whose score is ``centroid_cosine``, the cosine of the face's embedding (``embeddings``,
        from :meth:`classify`) to that class's centroid.
        """
        return run_predictions(self, probs, threshold, embeddings)

    def nearest_images(self) -> NearestImages:
        """The run's :class:`NearestImages`, built once (rebuilt when the dataset changes)."""
        with self._nearest_lock:
            if self._nearest is None or self._nearest.is_stale():
                self._nearest = NearestImages(self)
            return self._nearest


_CACHE: dict[tuple[str, str], tuple[int, Any]] = {}  # LoadedModel, or OnnxModel for exports
_CACHE_LOCK = threading.Lock()


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint file meant by ``path``: a ``.pt`` file, a run folder, or a run name."""
    p = Path(path).expanduser()
    if p.is_file():
        return p.resolve()
    if p.is_dir():
        return (p / "best.pt").resolve()
    named = models_dir() / str(path)
    if str(path) and not p.is_absolute() and named.is_dir():
        return (named / "best.pt").resolve()
    if str(path) and not p.is_absolute() and named.is_file():  # e.g. RUN/export/model.onnx
        return named.resolve()
    root = models_dir()
    runs = sorted(d.name for d in root.glob("*") if (d / "best.pt").is_file()) if root.is_dir() else []
    raise CheckpointError(
        f"{path}: no such checkpoint file, run folder or run name (runs in {models_dir()}: "
        f"{', '.join(runs) or 'none yet'})."
    )


def load_run(path: str | Path, *, device: str | torch.device = "auto") -> LoadedModel:
    """Load a run (run folder, run name under ``models_dir()``, or ``.pt`` file) for inference.

    An exported ``.onnx`` file (or the ``.json`` beside it) gives an
    :class:`~facecore.recognize.onnx.OnnxModel` instead: the same methods, run by onnxruntime on the CPU.
    Cached per (resolved checkpoint path, device): the same unchanged file gives the same object;
    a file whose modification time changed is loaded again.
    """
    tune_allocator()
    ckpt_path = resolve_checkpoint(path)
    if is_export(ckpt_path):
        ckpt_path = ckpt_path.with_suffix(".onnx")
        try:
            mtime = ckpt_path.stat().st_mtime_ns
        except OSError:
            mtime = -1  # load_onnx says what is missing
        key = (str(ckpt_path), "onnx")
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
            if hit is not None and hit[0] == mtime:
                return hit[1]
            onnx_model = load_onnx(ckpt_path)
            _CACHE[key] = (mtime, onnx_model)
            return onnx_model  # type: ignore[return-value]  # duck-typed like LoadedModel
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    try:
        mtime = ckpt_path.stat().st_mtime_ns
    except OSError as exc:
        raise CheckpointError(f"{ckpt_path}: no such checkpoint file.") from exc
    key = (str(ckpt_path), str(dev))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        model, ckpt = load_model(ckpt_path)
        try:
            transform = eval_transform_from_dict(ckpt["preprocessing"])
        except FacecoreError as exc:
            raise CheckpointError(f"{ckpt_path}: {exc}") from exc
        loaded = LoadedModel(model, ckpt, transform, dev, ckpt_path, mtime)
        _CACHE[key] = (mtime, loaded)
        return loaded


def load_recognizer(
    spec: str | Path | RecognizerRef | Recognizer, *, device: str | torch.device = "auto"
) -> Recognizer:
    """A trained run (:func:`load_run`, which also loads an exported ``.onnx``) or, for ``gallery:NAME``
    (any :class:`~facecore.recognize.refs.RecognizerRef` of a registered kind), what that kind's
    loader gives (a gallery with its embedder, :class:`facecore.gallery.match.GalleryModel`); objects
    already loaded are returned as they are."""
    if not isinstance(spec, (str, Path, RecognizerRef)):
        return spec
    ref = RecognizerRef.parse(spec)
    if not ref.is_run:
        loaded = recognizer_kind(ref.kind).load(ref.name)
        if not isinstance(loaded, Recognizer):
            raise TypeError(f"The loader of {ref.kind!r} gave {type(loaded).__name__}, not a Recognizer.")
        return loaded
    return load_run(ref.name if isinstance(spec, (str, RecognizerRef)) else spec, device=device)


def model_stamp(spec: str | Path | RecognizerRef) -> tuple[str, int]:
    """What a cache of loaded models (the dashboard's) keys ``spec`` by, and a stamp that changes
    when the model on disk changes: ``gallery:NAME`` and the gallery's stamp (its registered kind's),
    or the checkpoint file meant by a run name, folder or ``.pt`` file (:func:`resolve_checkpoint`)
    and its modification time in nanoseconds."""
    ref = RecognizerRef.parse(str(spec))
    if not ref.is_run:
        return str(ref), recognizer_kind(ref.kind).stamp(ref.name)
    path = resolve_checkpoint(ref.name if isinstance(spec, RecognizerRef) else spec)
    if path.suffix.lower() == ".json" and path.with_suffix(".onnx").is_file():  # an export's JSON
        path = path.with_suffix(".onnx")
    return str(path), path.stat().st_mtime_ns


def clear_cache() -> None:
    """Forget every loaded run."""
    with _CACHE_LOCK:
        _CACHE.clear()


@torch.inference_mode()
def predict_outputs(
    model: nn.Module, loader: Any, device: torch.device, *, embeddings: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(logits N x C, labels N, penultimate embeddings N x D or None)`` over ``loader``."""
    model.eval()
    logits, labels, feats = [], [], []
    handle = None
    if embeddings:
        handle = classifier_head(model).register_forward_hook(
            lambda _m, inputs, _out: feats.append(inputs[0].flatten(1).float().cpu())
        )
    try:
        for x, y in loader:
            logits.append(model(inference_input(x, device)).float().cpu())
            labels.append(y)
    finally:
        if handle is not None:
            handle.remove()
    if not logits:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), None
    emb = torch.cat(feats).numpy() if embeddings else None
    return torch.cat(logits).numpy(), torch.cat(labels).numpy(), emb


__all__ = [
    "LoadedModel",
    "clear_cache",
    "load_recognizer",
    "load_run",
    "model_stamp",
    "predict_outputs",
    "resolve_checkpoint",
]
