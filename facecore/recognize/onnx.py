"""Exported runs loaded for inference: an ONNX file (with the JSON beside it) run by onnxruntime.

* :class:`OnnxModel` is an exported file behind the methods of
  :class:`~facecore.recognize.models.LoadedModel` (``classify``, ``probabilities``, ``predictions``,
  ``preprocess``, ``margin`` ...), run by onnxruntime on the CPU; :func:`load_onnx` loads one
  (the file's sha256 is checked against its JSON), and ``load_run`` hands ``.onnx``/``.json`` to it.
* :func:`exported_models` lists the exports inside run folders (for the Live page).

Writing an export (:func:`facecore.live.export.export_run`) sits above, in :mod:`facecore.live.export`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facecore.constants import CROP_MARGIN
from facecore.data.transforms import eval_transform_from_dict
from facecore.errors import CheckpointError, ExportedModelError, ExportError, QuantizationError
from facecore.recognize.crops import _as_batch, _writable
from facecore.recognize.openset import DEFAULT_THRESHOLD
from facecore.recognize.protocol import PROBABILITY, PROBABILITY_SCALE
from facecore.recognize.refs import RUN, RecognizerRef
from facecore.recognize.results import ModelPrediction, run_predictions
from facecore.workspace import sha256_file

FORMAT = "facecore.onnx/1"
EXPORT_DIR = "export"
SUFFIXES = (".onnx", ".json")
_BATCH = 32


def _session(source: str | bytes | Path, threads: int = 0) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
    src = source if isinstance(source, bytes) else str(source)
    return ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])


def _logits(session: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    outs = [session.run(None, {"input": x[i : i + _BATCH]}) for i in range(0, len(x), _BATCH)]
    return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


def is_export(path: str | Path) -> bool:
    """True when ``path`` names an exported model (an ``.onnx`` file or the ``.json`` beside it)."""
    return Path(path).suffix.lower() in SUFFIXES


def read_export_meta(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """``(onnx file, its JSON)`` for an exported ``.onnx`` or ``.json``; the JSON is checked."""
    p = Path(path)
    json_path, onnx_path = p.with_suffix(".json"), p.with_suffix(".onnx")
    if not json_path.is_file():
        raise ExportedModelError(
            f"{json_path}: missing; an exported model is read with the JSON beside it (export the run "
            "again: python -m facecore export RUN --format onnx)."
        )
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportedModelError(f"{json_path}: not readable JSON ({exc}).") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ExportedModelError(f"{json_path}: not a facecore export (expected format {FORMAT!r}).")
    onnx_path = json_path.with_name(str(meta.get("onnx_file") or onnx_path.name))
    if not onnx_path.is_file():
        raise ExportedModelError(f"{onnx_path}: no such exported model file.")
    if sha256_file(onnx_path) != meta.get("sha256"):
        raise ExportedModelError(
            f"{onnx_path}: its sha256 differs from the one in {json_path.name}: the file was altered, "
            "truncated or replaced. Export the run again."
        )
    return onnx_path, meta


class _NoNearest:
    def nearest(self, embedding: Any, k: int = 3) -> list[tuple[Path, str, float]]:
        raise ExportError("An exported model carries no training images to search.")


class OnnxModel:
    """An exported run, run by onnxruntime (CPU), wherever a loaded run is used for inference."""

    score_kind = PROBABILITY
    threshold_scale = PROBABILITY_SCALE
    device = torch.device("cpu")

    def __init__(self, onnx_path: Path, meta: dict[str, Any], *, threads: int = 0) -> None:
        self.path = Path(onnx_path)
        self.mtime_ns = self.path.stat().st_mtime_ns
        self.meta = meta
        try:
            self.classes: list[str] = [str(c) for c in meta["classes"]]
            self.model_name = str(meta["model"])
            self.transform = eval_transform_from_dict(meta)
            self.input_size = int(meta["input_size"])
        except (KeyError, TypeError, ValueError, CheckpointError) as exc:
            raise ExportedModelError(f"{self.path.with_suffix('.json')}: incomplete ({exc}).") from exc
        suffix = " · onnx int8" if meta.get("int8") else " · onnx"
        self.run = f"{meta.get('source_run') or self.path.stem}{suffix}"
        self.ref = RecognizerRef(RUN, str(self.path))
        self.dataset_name = meta.get("dataset")
        self.threshold = float(meta.get("threshold", DEFAULT_THRESHOLD))
        self.margin = float(meta.get("margin", CROP_MARGIN))
        self.score_name = str(meta.get("open_set_score") or "max_softmax")
        centroids = meta.get("centroids")
        self.centroids = torch.tensor(centroids, dtype=torch.float32) if centroids else None
        if self.score_name == "centroid_cosine" and self.centroids is None:
            self.score_name = "max_softmax"
        try:
            self.session = _session(self.path, threads)
        except Exception as exc:  # onnxruntime raises its own classes for a broken graph
            raise ExportedModelError(f"{self.path}: onnxruntime cannot load it ({exc}).") from exc
        #: what the live recognizer reports as this model's precision (it never makes an int8 copy)
        self.fixed_precision = "onnx int8" if meta.get("int8") else "onnx float32"

    def __repr__(self) -> str:
        return f"OnnxModel(run={self.run!r}, model={self.model_name!r}, classes={len(self.classes)})"

    def describe(self) -> str:
        """E.g. ``custom_cnn exported to ONNX (onnx float32): 6 classes, from run cnn5``."""
        source = self.meta.get("source_run")
        return f"{self.model_name} exported to ONNX ({self.fixed_precision}): {len(self.classes)} classes" + (
            f", from run {source}" if source else ""
        )

    @property
    def needs_embeddings(self) -> bool:
        return self.score_name == "centroid_cosine"

    def preprocess(self, crops: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """Crops -> the normalised batch, through the same eval transform as the run's."""
        items = _as_batch(crops)
        if not items:
            return torch.zeros((0, 3, self.input_size, self.input_size))
        chw = [torch.from_numpy(_writable(c)).permute(2, 0, 1) for c in items]
        return torch.stack([self.transform(x) for x in chw])

    def logits(self, crops: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(logits N x C, embeddings N x D)`` from onnxruntime."""
        x = self.preprocess(crops).numpy()
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32), np.zeros((0, 0), np.float32)
        return _logits(self.session, np.ascontiguousarray(x, dtype=np.float32))

    def classify(self, crops: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, torch.Tensor]:
        """``(softmax probabilities N x C, embeddings N x D)``."""
        logits, emb = self.logits(crops)
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy(), torch.from_numpy(emb)

    def probabilities(self, crops: np.ndarray | Sequence[np.ndarray], *, int8: bool = False) -> np.ndarray:
        """Softmax probabilities (``int8`` is refused: export with ``--int8`` for an int8 file)."""
        if int8:
            self.int8_model()
        return self.classify(crops)[0]

    def int8_model(self) -> Any:
        raise QuantizationError(
            f"{self.run} runs as it was exported ({self.fixed_precision}); for int8, export the run "
            "with --int8"
        )

    def predictions(
        self, probs: np.ndarray, threshold: float | None = None, embeddings: Any = None
    ) -> list[ModelPrediction]:
        """One :class:`ModelPrediction` per row, by the run's own open-set rule."""
        return run_predictions(self, probs, threshold, embeddings)

    def nearest_images(self) -> _NoNearest:
        return _NoNearest()


def load_onnx(path: str | Path, *, threads: int = 0) -> OnnxModel:
    """An :class:`OnnxModel` for an exported ``.onnx`` file or the ``.json`` beside it."""
    onnx_path, meta = read_export_meta(path)
    return OnnxModel(onnx_path, meta, threads=threads)


def exported_models(run_paths: Sequence[str | Path]) -> dict[str, str]:
    """``{onnx file: "RUN · onnx"}`` for the exports in the ``export/`` folder of each run folder."""
    found = {}
    for folder in run_paths:
        for json_path in sorted((Path(folder) / EXPORT_DIR).glob("*.json")):
            try:
                meta = json.loads(json_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(meta, dict) and meta.get("format") == FORMAT:
                kind = "onnx int8" if meta.get("int8") else "onnx"
                onnx_path = json_path.with_name(str(meta.get("onnx_file")))
                found[str(onnx_path)] = f"{Path(folder).name} · {kind}"
    return found


def export_threshold(spec: str | Path) -> float | None:
    """The threshold stored with an exported model (``spec``: its ``.onnx`` or ``.json``), else None."""
    if not is_export(spec):
        return None
    try:
        meta = json.loads(Path(spec).with_suffix(".json").read_text(encoding="utf-8"))
        return float(meta["threshold"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


__all__ = [
    "EXPORT_DIR",
    "FORMAT",
    "OnnxModel",
    "export_threshold",
    "exported_models",
    "is_export",
    "load_onnx",
    "read_export_meta",
    "sha256_file",
]
