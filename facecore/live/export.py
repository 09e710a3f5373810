"""Exported runs: a run written as ONNX (with a JSON beside it), checked, and loaded for inference.

* :func:`export_run` writes ``model.onnx`` (or ``model.int8.onnx``) and ``model.json`` into
  ``<run>/export/`` (or where asked), checks the file with onnxruntime against the PyTorch model on
  real face crops (the dataset's test split, else training faces) before it is moved into place,
  and refuses (:class:`~facecore.errors.ExportMismatchError`, nothing left behind) when the answers
  differ: any top-1 difference in float32; in int8, more than :data:`INT8_MAX_DISAGREE` of them.
* :class:`OnnxModel` is an exported file behind the methods of
  :class:`~facecore.live.inference.LoadedModel` (``classify``, ``probabilities``, ``predictions``,
  ``preprocess``, ``margin`` ...), run by onnxruntime on the CPU; :func:`load_onnx` loads one
  (the file's sha256 is checked against its JSON), and ``load_run`` hands ``.onnx``/``.json`` to it.
* :func:`exported_models` lists the exports inside run folders (for the Live page).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import facecore
from facecore.errors import (
    CheckpointError,
    ExportedModelError,
    ExportError,
    ExportMismatchError,
    FacecoreError,
    QuantizationError,
)
from facecore.evaluate.openset import DEFAULT_THRESHOLD, centroid_cosine
from facecore.live.inference import (
    CROP_SIZE,
    ModelPrediction,
    _as_batch,
    _writable,
    make_predictions,
    training_crops,
)

FORMAT = "facecore.onnx/1"
EXPORT_DIR = "export"
#: the most crops a check runs (a ResNet-50 on 2 CPU cores takes ~0.1 s per crop, twice)
CHECK_CROPS = 128
#: int8 is refused when more than this share of the check crops change their top-1 class (at least
#: one disagreement is always allowed: a test split of 4 faces would otherwise refuse on one face).
#: 10% is the bar facecore's own torch int8 copies meet on real faces (tests/models/test_quantize.py).
INT8_MAX_DISAGREE = 0.10
SUFFIXES = (".onnx", ".json")
_BATCH = 32


# --------------------------------------------------------------------------------------------
# Files


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_paths(out: Path, int8: bool) -> tuple[Path, Path]:
    """``(onnx file, json file)`` for ``--out`` (a ``.onnx`` file, or a folder)."""
    out = Path(out)
    if out.suffix == ".onnx":
        return out, out.with_suffix(".json")
    stem = "model.int8" if int8 else "model"
    return out / f"{stem}.onnx", out / f"{stem}.json"


def _tmp_beside(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _session(source: str | bytes | Path, threads: int = 0) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
    src = source if isinstance(source, bytes) else str(source)
    return ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------------------------
# Exporting


def check_crops(dataset_name: str | None, n: int = CHECK_CROPS) -> tuple[str, list[np.ndarray]]:
    """``(where from, crops)``: up to ``n`` faces of the dataset's test split, else its training faces."""
    from facecore.data.dataset import load_dataset
    from facecore.data.images import load_rgb

    if dataset_name:
        try:
            items = load_dataset(dataset_name).items("test")
        except FacecoreError:
            items = []
        if items:
            step = max(1, len(items) // n)
            return f"{dataset_name} test split", [load_rgb(p) for p, _ in items[::step][:n]]
    try:
        return f"{dataset_name} training faces", training_crops(dataset_name, n)
    except QuantizationError as exc:
        raise ExportError(
            f"An export is checked against PyTorch on the run's own faces, and there are none here: {exc}"
        ) from exc


def _logits(session: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    outs = [session.run(None, {"input": x[i : i + _BATCH]}) for i in range(0, len(x), _BATCH)]
    return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


def _torch_logits(loaded: Any, x: torch.Tensor) -> np.ndarray:
    model = loaded.model
    with torch.inference_mode():
        chunks = [model(x[i : i + _BATCH].to(loaded.device)).float().cpu() for i in range(0, len(x), _BATCH)]
    return torch.cat(chunks).numpy()


def compare(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """Max abs logit difference and top-1 agreement of ``other`` against ``reference`` logits."""
    same = reference.argmax(1) == other.argmax(1)
    return {
        "crops": int(len(same)),
        "max_abs_logit_diff": float(np.abs(reference - other).max()) if len(same) else 0.0,
        "top1_equal": bool(same.all()),
        "top1_agreement": float(same.mean()) if len(same) else 1.0,
        "top1_disagreements": int((~same).sum()),
    }


def export_run(run: str | Path, *, out: str | Path | None = None, int8: bool = False) -> dict[str, Any]:
    """Export a run (name, folder or ``.pt``) to ONNX, check it against PyTorch, and return its JSON
    (with ``onnx_path`` and ``json_path``). Default place: ``<run folder>/export/model[.int8].onnx``."""
    from facecore.live.inference import load_run
    from facecore.mode import require_writable
    from facecore.models.onnx import EXPORTER, OPSET, export_onnx, quantize_onnx_int8
    from facecore.models.registry import classifier_head

    require_writable("Exporting a run")
    if is_export(run):
        raise ExportError(f"{run} is an export already; export the run it came from (its name or folder).")
    loaded = load_run(run, device="cpu")
    prep = dict(loaded.ckpt["preprocessing"])
    size = int(prep["input_size"])
    onnx_path, json_path = export_paths(Path(out) if out else loaded.path.parent / EXPORT_DIR, int8)
    if onnx_path.is_dir() or json_path.is_dir():
        raise ExportError(f"{onnx_path}: a folder is in the way of the exported file.")
    source, crops = check_crops(loaded.dataset_name)
    x = loaded.preprocess(crops)
    reference = _torch_logits(loaded, x)
    data = export_onnx(loaded.model, classifier_head(loaded.model), size)

    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_float, tmp_onnx, tmp_json = (_tmp_beside(onnx_path) for _ in range(3))
    try:
        tmp_float.write_bytes(data)
        if int8:
            quantize_onnx_int8(str(tmp_float), str(tmp_onnx))
        else:
            os.replace(tmp_float, tmp_onnx)
        # the check reads the file as written, not the bytes in memory
        got, _ = _logits(_session(tmp_onnx), x.numpy())
        check = {"source": source, **compare(reference, got)}
        refuse = check["top1_disagreements"] > (
            max(1, int(INT8_MAX_DISAGREE * check["crops"])) if int8 else 0
        )
        if refuse:
            rule = (
                f"int8 may change at most {INT8_MAX_DISAGREE:.0%} of them (at least one)"
                if int8
                else "float32 must give the same top-1 class on every one"
            )
            raise ExportMismatchError(
                f"The exported {onnx_path.name} changes the top-1 class of {check['top1_disagreements']} of "
                f"{check['crops']} faces ({source}) against PyTorch (max abs logit difference "
                f"{check['max_abs_logit_diff']:.3g}); {rule}. Nothing was written."
            )
        meta = {
            "format": FORMAT,
            "onnx_file": onnx_path.name,
            "sha256": sha256_file(tmp_onnx),
            "bytes": tmp_onnx.stat().st_size,
            "int8": bool(int8),
            "source_run": loaded.run,
            "source_checkpoint": str(loaded.path),
            "model": loaded.model_name,
            "dataset": loaded.dataset_name,
            "classes": list(loaded.classes),
            "input": {"name": "input", "layout": "NCHW", "dtype": "float32", "batch": "dynamic"},
            "outputs": ["logits", "embedding"],
            "input_size": size,
            "resize_size": int(prep["resize_size"]),
            "mean": [float(v) for v in prep["mean"]],
            "std": [float(v) for v in prep["std"]],
            "crop_size": CROP_SIZE,
            "margin": float(loaded.margin),
            "threshold": float(loaded.threshold),
            "score_kind": loaded.score_kind,
            "open_set_score": loaded.score_name,
            "centroids": loaded.centroids.tolist() if loaded.needs_embeddings else None,
            "opset": OPSET,
            "exporter": EXPORTER,
            "versions": {
                "facecore": facecore.__version__,
                "torch": str(torch.__version__),
                "onnx": _version("onnx"),
                "onnxruntime": _version("onnxruntime"),
            },
            "check": check,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        tmp_json.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        for tmp in (tmp_onnx, tmp_json):
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_onnx, onnx_path)
        os.replace(tmp_json, json_path)
    finally:
        for tmp in (tmp_float, tmp_onnx, tmp_json):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return {**meta, "onnx_path": str(onnx_path), "json_path": str(json_path)}


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------------------------
# Loading


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

    score_kind = "probability"
    device = torch.device("cpu")

    def __init__(self, onnx_path: Path, meta: dict[str, Any], *, threads: int = 0) -> None:
        from facecore.data.transforms import eval_transform_from_dict

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
        self.dataset_name = meta.get("dataset")
        self.threshold = float(meta.get("threshold", DEFAULT_THRESHOLD))
        self.margin = float(meta.get("margin", 0.25))
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
        t = self.threshold if threshold is None else float(threshold)
        probs = np.asarray(probs, dtype=np.float64)
        scores = probs.max(axis=1) if len(probs) else np.zeros(0)
        if self.needs_embeddings:
            if embeddings is None:
                raise ValueError(f"{self.run} decides Unknown by centroid cosine: pass the embeddings.")
            emb = torch.as_tensor(embeddings).float().numpy()
            scores = centroid_cosine(emb, probs.argmax(axis=1), self.centroids.numpy())
        return make_predictions(self.run, self.model_name, self.classes, probs, scores, t)

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
    "INT8_MAX_DISAGREE",
    "OnnxModel",
    "check_crops",
    "export_run",
    "export_threshold",
    "exported_models",
    "is_export",
    "load_onnx",
    "read_export_meta",
]
