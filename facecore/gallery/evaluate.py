"""Evaluate a gallery on a dataset's held-out split, with the metrics a trained run reports.

Every face of the split is embedded and matched; it is named as its best person when the score
reaches the gallery's stored threshold, else "Unknown". A face whose class is not enrolled (the
``Unknown`` class, or a person left out) is right when it is called "Unknown". So ``accuracy``
and ``macro_f1`` are open-set figures at the stored threshold, over the same classes and images
as the runs' (whose Unknown class is a trained class instead). ``rank1_known`` is the closed-set
share of enrolled people's faces whose best match is right, with no threshold.

Results go to ``galleries/<name>/eval/<dataset>-<split>/`` (``metrics.json``, ``predictions.csv``).
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from facecore import workspace
from facecore.constants import UNKNOWN
from facecore.data.dataset import load_dataset
from facecore.errors import FacecoreError
from facecore.gallery.calibrate import dataset_faces, score_crops, sweep_table
from facecore.gallery.match import GalleryModel, load_gallery_model
from facecore.gallery.store import EMBEDDINGS_FILE, META_FILE
from facecore.mode import require_writable
from facecore.recognize.openset import operating_point, suggest_threshold
from facecore.recognize.prediction_rows import PredictionRow, write_predictions
from facecore.recognize.result import Evaluation

EVAL_DIR = "eval"


def eval_folder(model: GalleryModel, dataset: str, split: str):
    return model.gallery.path / EVAL_DIR / f"{workspace.safe_name(dataset)}-{split}"


def measure_latency(model: GalleryModel, crops: list[np.ndarray], runs: int = 5) -> dict[str, float]:
    """Milliseconds per face to embed and match, at batch 1 and 32 (median of ``runs``) on real faces."""
    out = {}
    for b in (1, 32):
        batch = (crops * (b // max(len(crops), 1) + 1))[:b]
        model.classify(batch)  # warm-up
        times = []
        for _ in range(runs if b == 1 else 2):
            t0 = time.perf_counter()
            model.classify(batch)
            times.append(time.perf_counter() - t0)
        out[f"batch{b}"] = round(1000 * statistics.median(times) / b, 4)
    return out


def evaluate_gallery(
    name: str, dataset: str, *, split: str = "test", latency: bool = True, save: bool = True
) -> Evaluation:
    """Evaluate gallery ``name`` on ``split`` of ``dataset``; return (and save) an :class:`Evaluation`."""
    if save:
        require_writable("Evaluating a gallery (it saves its results)")
    model = load_gallery_model(name)
    ds = load_dataset(dataset)
    files, crops, truth = dataset_faces(model, dataset, split)
    scores = score_crops(model, crops)
    best = scores.argmax(1)
    conf = scores.max(1)
    t = model.threshold
    raw = [model.classes[i] for i in best]
    pred = [r if c >= t else UNKNOWN for r, c in zip(raw, conf, strict=True)]
    classes = list(dict.fromkeys([*ds.classes, *model.classes, UNKNOWN]))
    open_set = _open_set(model, scores, truth, conf)
    g = model.gallery
    result: dict[str, Any] = {
        "run": model.run,
        "gallery": g.name,
        "embedder": model.embedder.name,
        "match": g.match,
        "model": model.model_name,
        "epoch": None,
        "dataset": ds.name,
        "dataset_path": str(ds.path.resolve()),
        "split_seed": ds.meta.get("seed"),
        "split": split,
        "n_images": len(files),
        "classes": classes,
        "people": model.classes,
        "enrolled_faces": len(g.files),
        "unknown_class": UNKNOWN,
        **_classification(truth, pred, raw, classes),
        "misclassified": _misclassified(files, truth, pred, conf),
        "latency_ms": measure_latency(model, crops[:32]) if latency else None,
        "device": "cpu",
        "threads": None,
        "params_total": None,
        "params_trainable": 0,
        "checkpoint_bytes": (g.path / EMBEDDINGS_FILE).stat().st_size,
        "train_seconds": None,
        "open_set": open_set,
        "warnings": [],
        "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if g.threshold_info.get("source", "").startswith(f"dataset {ds.name} ({split})"):
        result["warnings"].append(f"the threshold was calibrated on this {split} split: FAR is optimistic.")
    if save:
        out = eval_folder(model, ds.name, split)
        with workspace.folder_lock(g.path.parent, g.name, what="gallery name"):
            out.mkdir(parents=True, exist_ok=True)
            result["predictions_csv"] = str((out / "predictions.csv").resolve())
            result["metrics_json"] = str((out / "metrics.json").resolve())
            _write_predictions(out / "predictions.csv", files, truth, pred, raw, conf, scores, model.classes)
            workspace.atomic_write_text(out / "metrics.json", json.dumps(result, indent=2))
    return Evaluation.from_dict(result)


def _classification(truth: list[str], pred: list[str], raw: list[str], classes: list[str]) -> dict[str, Any]:
    """Accuracy, F1, rank-1 on enrolled people's faces (``raw``: best match, no threshold),
    per-class figures and the confusion matrix, as a run's evaluation has them."""
    present = sorted(set(truth), key=classes.index)
    p, r, f1, support = precision_recall_fscore_support(truth, pred, labels=classes, zero_division=0)
    known = np.array([x != UNKNOWN for x in truth])
    return {
        "accuracy": float(accuracy_score(truth, pred)),
        "macro_f1": float(f1_score(truth, pred, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(truth, pred, labels=present, average="weighted", zero_division=0)),
        "rank1_known": float(np.mean([raw[i] == truth[i] for i in np.flatnonzero(known)]))
        if known.any()
        else None,
        "per_class": {
            c: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
        "confusion_matrix": confusion_matrix(truth, pred, labels=classes).tolist(),
    }


def _misclassified(
    files: list[str], truth: list[str], pred: list[str], conf: np.ndarray
) -> list[dict[str, Any]]:
    """The faces named wrongly, most confident first."""
    return sorted(
        (
            {"file": files[i], "true": truth[i], "pred": pred[i], "confidence": float(conf[i])}
            for i in range(len(files))
            if pred[i] != truth[i]
        ),
        key=lambda row: -row["confidence"],
    )


def _open_set(model: GalleryModel, scores: np.ndarray, truth: list[str], conf: np.ndarray) -> dict[str, Any]:
    """The open-set block: the threshold sweep, the gallery's threshold and what it does, AUROC."""
    g = model.gallery
    info = g.threshold_info
    t = model.threshold
    rows = sweep_table(model, scores, truth)
    known = np.array([x != UNKNOWN for x in truth])
    auroc = None
    if known.any() and not known.all():
        auroc = round(float(roc_auc_score(known, conf)), 6)
    return {
        "score": f"cosine_{g.match}",
        "sweep": rows,
        "target_far": info.get("target_far"),
        "suggested": suggest_threshold(rows, float(info.get("target_far") or 0.01)),
        "threshold_in_model": t,
        "threshold_info": info,
        "at_model_threshold": operating_point(rows, t),
        "scores": {f"cosine_{g.match}": {"auroc": auroc}},
    }


def _write_predictions(path, files, truth, pred, raw, conf, scores, people) -> None:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :3]
    write_predictions(
        path,
        (
            PredictionRow(
                file=f, true=truth[i], pred=pred[i], confidence=float(conf[i]),
                top=[(people[k], float(scores[i, k])) for k in top[i]],
                correct=pred[i] == truth[i], accepted=pred[i] != UNKNOWN,
            )
            for i, f in enumerate(files)
        ),
    )  # fmt: skip


def cached_gallery_evaluation(name: str, dataset: str, split: str = "test") -> Evaluation | None:
    """The saved evaluation of gallery ``name`` on ``dataset``/``split`` if newer than the gallery
    and the dataset, else None."""
    try:
        model = load_gallery_model(name)
        ds = load_dataset(dataset)
    except FacecoreError:
        return None
    path = eval_folder(model, ds.name, split) / "metrics.json"
    try:
        mtime = path.stat().st_mtime_ns
        newer = all(
            mtime >= (model.gallery.path / f).stat().st_mtime_ns for f in (META_FILE, EMBEDDINGS_FILE)
        )
        newer = newer and mtime >= (ds.path / "manifest.csv").stat().st_mtime_ns
        return Evaluation.from_dict(json.loads(path.read_text("utf-8"))) if newer else None
    except (OSError, ValueError):
        return None


__all__ = ["cached_gallery_evaluation", "evaluate_gallery"]
