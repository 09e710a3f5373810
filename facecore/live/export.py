"""Exported runs: a run written as ONNX (with a JSON beside it), checked, and loaded for inference.

* :func:`export_run` writes ``model.onnx`` (or ``model.int8.onnx``) and ``model.json`` into
  ``<run>/export/`` (or where asked), checks the file with onnxruntime against the PyTorch model on
  real face crops (the dataset's test split, else training faces) before it is moved into place,
  and refuses (:class:`~facecore.errors.ExportMismatchError`, nothing left behind) when the answers
  differ: any top-1 difference in float32; in int8, more than :data:`INT8_MAX_DISAGREE` of them.
* Loading an export sits below, in :mod:`facecore.recognize.onnx`:
  :class:`~facecore.recognize.onnx.OnnxModel` is an exported file behind the methods of
  :class:`~facecore.recognize.models.LoadedModel` (``classify``, ``probabilities``, ``predictions``,
  ``preprocess``, ``margin`` ...), run by onnxruntime on the CPU;
  :func:`~facecore.recognize.onnx.load_onnx` loads one (the file's sha256 is checked against its
  JSON), ``load_run`` hands ``.onnx``/``.json`` to it, and
  :func:`~facecore.recognize.onnx.exported_models` lists the exports inside run folders (for the
  Live page).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import facecore
from facecore.constants import CROP_SIZE
from facecore.data.dataset import load_dataset
from facecore.data.images import load_rgb
from facecore.errors import (
    ExportError,
    ExportMismatchError,
    FacecoreError,
    QuantizationError,
)
from facecore.mode import require_writable
from facecore.models import onnx as onnx_export  # looked up when called: tests swap export_onnx
from facecore.models.registry import classifier_head
from facecore.recognize.crops import training_crops
from facecore.recognize.models import load_run
from facecore.recognize.onnx import _BATCH, EXPORT_DIR, FORMAT, _logits, _session, is_export, sha256_file

#: the most crops a check runs (a ResNet-50 on 2 CPU cores takes ~0.1 s per crop, twice)
CHECK_CROPS = 128
#: int8 is refused when more than this share of the check crops change their top-1 class (at least
#: one disagreement is always allowed: a test split of 4 faces would otherwise refuse on one face).
#: 10% is the bar facecore's own torch int8 copies meet on real faces (tests/models/test_quantize.py).
INT8_MAX_DISAGREE = 0.10


# --------------------------------------------------------------------------------------------
# Files


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


# --------------------------------------------------------------------------------------------
# Exporting


def check_crops(dataset_name: str | None, n: int = CHECK_CROPS) -> tuple[str, list[np.ndarray]]:
    """``(where from, crops)``: up to ``n`` faces of the dataset's test split, else its training faces."""
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
    require_writable("Exporting a run")
    if is_export(run):
        raise ExportError(f"{run} is an export already; export the run it came from (its name or folder).")
    loaded = load_run(run, device="cpu")
    size = int(loaded.ckpt["preprocessing"]["input_size"])
    onnx_path, json_path = export_paths(Path(out) if out else loaded.path.parent / EXPORT_DIR, int8)
    if onnx_path.is_dir() or json_path.is_dir():
        raise ExportError(f"{onnx_path}: a folder is in the way of the exported file.")
    source, crops = check_crops(loaded.dataset_name)
    x = loaded.preprocess(crops)
    reference = _torch_logits(loaded, x)
    data = onnx_export.export_onnx(loaded.model, classifier_head(loaded.model), size)

    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_float, tmp_onnx, tmp_json = (_tmp_beside(onnx_path) for _ in range(3))
    try:
        tmp_float.write_bytes(data)
        if int8:
            onnx_export.quantize_onnx_int8(str(tmp_float), str(tmp_onnx))
        else:
            os.replace(tmp_float, tmp_onnx)
        # the check reads the file as written, not the bytes in memory
        got, _ = _logits(_session(tmp_onnx), x.numpy())
        check = _checked(onnx_path.name, {"source": source, **compare(reference, got)}, int8)
        meta = _export_meta(loaded, onnx_path.name, tmp_onnx, int8=int8, check=check)
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


def _checked(name: str, check: dict[str, Any], int8: bool) -> dict[str, Any]:
    """``check`` (of the export ``name`` against PyTorch), or :class:`ExportMismatchError` when it
    changes too many answers: any in float32; in int8, more than :data:`INT8_MAX_DISAGREE`."""
    allowed = max(1, int(INT8_MAX_DISAGREE * check["crops"])) if int8 else 0
    if check["top1_disagreements"] <= allowed:
        return check
    rule = (
        f"int8 may change at most {INT8_MAX_DISAGREE:.0%} of them (at least one)"
        if int8
        else "float32 must give the same top-1 class on every one"
    )
    raise ExportMismatchError(
        f"The exported {name} changes the top-1 class of {check['top1_disagreements']} of "
        f"{check['crops']} faces ({check['source']}) against PyTorch (max abs logit difference "
        f"{check['max_abs_logit_diff']:.3g}); {rule}. Nothing was written."
    )


def _export_meta(
    loaded: Any, name: str, onnx_file: Path, *, int8: bool, check: dict[str, Any]
) -> dict[str, Any]:
    """The JSON written beside the export ``name`` (whose bytes are in ``onnx_file`` for now)."""
    prep = dict(loaded.ckpt["preprocessing"])
    return {
        "format": FORMAT,
        "onnx_file": name,
        "sha256": sha256_file(onnx_file),
        "bytes": onnx_file.stat().st_size,
        "int8": bool(int8),
        "source_run": loaded.run,
        "source_checkpoint": str(loaded.path),
        "model": loaded.model_name,
        "dataset": loaded.dataset_name,
        "classes": list(loaded.classes),
        "input": {"name": "input", "layout": "NCHW", "dtype": "float32", "batch": "dynamic"},
        "outputs": ["logits", "embedding"],
        "input_size": int(prep["input_size"]),
        "resize_size": int(prep["resize_size"]),
        "mean": [float(v) for v in prep["mean"]],
        "std": [float(v) for v in prep["std"]],
        "crop_size": CROP_SIZE,
        "margin": float(loaded.margin),
        "threshold": float(loaded.threshold),
        "score_kind": loaded.score_kind,
        "open_set_score": loaded.score_name,
        "centroids": loaded.centroids.tolist() if loaded.needs_embeddings else None,
        "opset": onnx_export.OPSET,
        "exporter": onnx_export.EXPORTER,
        "versions": {
            "facecore": facecore.__version__,
            "torch": str(torch.__version__),
            "onnx": _version("onnx"),
            "onnxruntime": _version("onnxruntime"),
        },
        "check": check,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "unknown"


__all__ = ["CHECK_CROPS", "INT8_MAX_DISAGREE", "check_crops", "compare", "export_paths", "export_run"]
