"""Evaluate a trained run on one split of its dataset: metrics, predictions, latency, open set.

``evaluate_run(run)`` loads the run's checkpoint and the dataset it was trained on, predicts
every image of the split (``test`` by default) with the checkpoint's own eval transform and
writes ``<run>/eval_<split>/predictions.csv`` and ``metrics.json``; it returns the same dict.

The unknown threshold stored in a run is calibrated by training on the **validation** split.
Choosing it on the test split (``save_threshold=True``) makes the test numbers optimistic:
they no longer measure faces the threshold was not tuned on. Do it only knowingly.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)
from torch import nn

from facecore import workspace
from facecore.constants import SPLITS, UNKNOWN
from facecore.data.dataset import FaceDataset, load_dataset
from facecore.data.loaders import FaceCrops, make_loader
from facecore.data.transforms import eval_transform_from_dict
from facecore.device import for_inference, inference_input, resolve_device, sync, tune_allocator
from facecore.errors import CheckpointError, ConfigError, DatasetError, FacecoreError
from facecore.mode import require_writable
from facecore.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from facecore.models.registry import count_parameters
from facecore.recognize.models import load_run, predict_outputs
from facecore.recognize.openset import (
    class_centroids,
    open_set_scores,
    operating_point,
    suggest_threshold,
    sweep_scores,
    unknown_scores,
)
from facecore.recognize.prediction_rows import PredictionRow, write_predictions
from facecore.recognize.result import Evaluation

#: The open-set score of a run whose checkpoint names none (trained before the choice existed).
OPEN_SET_SCORE = "max_softmax"
LATENCY_BATCHES = (1, 32)


# --- locating a run --------------------------------------------------------------------------------


def resolve_run(run: str | Path) -> tuple[Path, Path]:
    """``(checkpoint file, run folder)`` for a run folder, a ``.pt`` file, or a run name under models/."""
    path = Path(run)
    if path.is_file():
        return path, path.parent
    if path.is_dir():
        return path / "best.pt", path
    candidate = workspace.models_dir() / str(run)
    if str(run) and candidate.is_dir():
        return candidate / "best.pt", candidate
    root = workspace.models_dir()
    have = sorted(p.name for p in root.iterdir() if (p / "best.pt").is_file()) if root.is_dir() else []
    raise CheckpointError(
        f"No run or checkpoint {str(run)!r}: not a file, not a folder, and not a run under {root} "
        f"(runs: {', '.join(have) or 'none yet'})."
    )


def eval_dir(run_dir: Path, checkpoint: Path, split: str) -> Path:
    """``<run>/eval_<split>`` for best.pt; ``<run>/eval_<split>-<stem>`` for any other checkpoint file."""
    suffix = "" if checkpoint.name == "best.pt" else f"-{checkpoint.stem}"
    return run_dir / f"eval_{split}{suffix}"


def _dataset_for(ckpt: dict[str, Any], checkpoint: Path) -> FaceDataset:
    """The dataset the checkpoint was trained on, checked to have the same classes."""
    info = ckpt.get("dataset") or {}
    name = info.get("name") or (ckpt.get("config") or {}).get("dataset")
    if not name:
        raise CheckpointError(f"{checkpoint}: the checkpoint does not say which dataset it was trained on.")
    try:
        dataset = load_dataset(name)
    except DatasetError as exc:
        raise DatasetError(
            f"{checkpoint} was trained on dataset {name!r}, which is not in this workspace any more "
            f"({exc}). Re-import it under the same name with the same split seed "
            f"({info.get('split_seed')}) to evaluate this run."
        ) from exc
    if list(dataset.classes) != list(ckpt["classes"]):
        raise DatasetError(
            f"Dataset {name!r} has changed since {checkpoint} was trained: its classes are now "
            f"{dataset.classes}, the model's are {ckpt['classes']}. Evaluate on the dataset as it was, "
            "or retrain."
        )
    return dataset


# --- inference ---------------------------------------------------------------------------------------


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@torch.inference_mode()
def measure_latency(
    model: nn.Module,
    input_size: int,
    device: torch.device,
    *,
    batches: Sequence[int] = LATENCY_BATCHES,
    budget_s: float = 4.0,
    max_runs: int = 15,
) -> dict[str, float]:
    """Milliseconds per image at each batch size: the median of timed runs after a warm-up.

    Inputs are random (latency does not depend on pixel values). Batch sizes are measured in
    increasing order, each within an equal share of ``budget_s``, up to ``max_runs`` timed runs:
    at least 3, or 1 when one run takes over a third of the share. A batch expected (from the
    smaller batch before it) to take over a third of the share is not warmed up again: the first
    batch size already warmed the model up, and a second slow pass would double the time.
    """
    model.eval()
    gen = torch.Generator().manual_seed(0)
    out: dict[str, float] = {}
    share = budget_s / max(len(batches), 1)
    per_image = 0.0
    for b in sorted(batches):
        x = inference_input(torch.randn(b, 3, input_size, input_size, generator=gen), device)
        if not per_image or per_image * b <= share / 3:
            for _ in range(2 if not per_image else 1):
                model(x)
            sync(device)
        times: list[float] = []
        t_end = time.perf_counter() + share
        while len(times) < max_runs:
            t0 = time.perf_counter()
            model(x)
            sync(device)
            now = time.perf_counter()
            times.append(now - t0)
            if t_end - now < times[-1] and (len(times) >= 3 or times[-1] > share / 3):
                break
        per_image = statistics.median(times) / b
        out[f"batch{b}"] = round(1000 * per_image, 4)
    return out


# --- the evaluation --------------------------------------------------------------------------------


def evaluate_run(
    run: str | Path,
    *,
    split: str = "test",
    target_far: float | None = None,
    save_threshold: bool = False,
    latency: bool = True,
    out_dir: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 64,
) -> Evaluation:
    """Evaluate ``run`` (folder, name under models/, or .pt file) on ``split``; return an :class:`Evaluation`.

    Writes ``predictions.csv`` and ``metrics.json`` to ``out_dir`` (default ``<run>/eval_<split>``).
    ``target_far`` (default: the run's training config) picks the suggested threshold;
    ``save_threshold`` writes it into the checkpoint (and best.pt/last.pt beside it). The
    threshold is calibrated on the validation split by training: choosing it on ``test`` leaks
    the test set into the model, so it is off by default. Refused in presentation mode (it saves
    its results): evaluate before the demo.
    """
    require_writable("Evaluating a run (it saves its results)")
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; choose from {', '.join(SPLITS)}.")
    if target_far is not None and not 0 <= target_far <= 1:
        raise ConfigError(f"target_far must be between 0 and 1, got {target_far}.")
    checkpoint, run_dir = resolve_run(run)
    tune_allocator()  # as training and inference do: batch-32 latency measured 2.5x slower without
    model, ckpt = load_model(checkpoint)
    dataset = _dataset_for(ckpt, checkpoint)
    classes: list[str] = list(ckpt["classes"])
    unknown = classes.index(UNKNOWN) if UNKNOWN in classes else None
    items = dataset.items(split)
    if not items:
        raise DatasetError(f"Dataset {dataset.name!r} has no {split} images to evaluate on.")
    if save_threshold and (unknown is None or not any(label == unknown for _, label in items)):
        raise DatasetError(
            f"Cannot save a threshold: the {split} split has no {UNKNOWN} faces to calibrate it on."
        )
    warnings = []
    seed_then = (ckpt.get("dataset") or {}).get("split_seed")
    if seed_then is not None and seed_then != dataset.meta.get("seed"):
        warnings.append(
            f"dataset {dataset.name!r} was re-split (seed {dataset.meta.get('seed')}, the run was trained "
            f"with seed {seed_then}): {split} images may include images the model was trained on."
        )
    if split == "train":
        warnings.append("the model was trained on these images: the numbers overstate how it generalises.")
    elif split == "val":
        warnings.append("training chose the best epoch and the threshold on these images: the numbers are "
                        "optimistic; use the test split to report results.")

    dev = resolve_device(device)
    model = for_inference(model, dev)
    transform = eval_transform_from_dict(ckpt["preprocessing"])
    data = FaceCrops(items, transform, cache_dir=dataset.path / ".cache")
    loader = make_loader(data, batch_size=batch_size, shuffle=False, workers=0, seed=0)
    logits, labels, embeddings = predict_outputs(model, loader, dev)
    probs = _softmax(logits)
    pred = probs.argmax(1)
    centroids = run_centroids(ckpt, checkpoint)
    scores = unknown_scores(logits, embeddings, centroids)
    score_name = str(ckpt.get("open_set_score") or OPEN_SET_SCORE)
    if score_name not in scores:
        warnings.append(f"the run decides Unknown by {score_name}, which cannot be computed here; "
                        f"{OPEN_SET_SCORE} is used instead.")
        score_name = OPEN_SET_SCORE
    conf = scores[score_name]
    n_cls = len(classes)
    present = sorted(set(labels.tolist()))

    precision, recall, f1, support = precision_recall_fscore_support(
        labels, pred, labels=list(range(n_cls)), zero_division=0
    )
    per_class = {
        c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
            "support": int(support[i])}
        for i, c in enumerate(classes)
    }
    threshold = float(ckpt.get("threshold", 0.5))
    rows = sweep_scores(conf, pred, labels, unknown)
    far = target_far if target_far is not None else float((ckpt.get("config") or {}).get("target_far", 0.01))
    suggested = suggest_threshold(rows, far)

    out = Path(out_dir) if out_dir is not None else eval_dir(run_dir, checkpoint, split)
    out.mkdir(parents=True, exist_ok=True)
    files = [p.relative_to(dataset.path).as_posix() for p, _ in items]
    accepted = (conf >= threshold) & (pred != unknown if unknown is not None else True)
    predictions_csv = out / "predictions.csv"
    _write_predictions(predictions_csv, files, labels, probs, classes, accepted)
    misclassified = sorted(
        (
            {"file": files[i], "true": classes[labels[i]], "pred": classes[pred[i]],
             "confidence": float(probs[i].max())}
            for i in np.flatnonzero(pred != labels)
        ),
        key=lambda r: -r["confidence"],
    )

    total, trainable = count_parameters(model)
    summary = _read_json(run_dir / "summary.json")
    result: dict[str, Any] = {
        "run": run_dir.name,
        "run_dir": str(run_dir.resolve()),
        "checkpoint": str(checkpoint.resolve()),
        "epoch": int(ckpt.get("epoch", 0)),
        "model": ckpt["model"],
        "dataset": dataset.name,
        "dataset_path": str(dataset.path.resolve()),
        "split_seed": dataset.meta.get("seed"),
        "split": split,
        "n_images": len(items),
        "classes": classes,
        "unknown_class": UNKNOWN if unknown is not None else None,
        "loss": float(log_loss(labels, probs, labels=list(range(n_cls)))),
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, pred, labels=present, average="weighted", zero_division=0)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(labels, pred, labels=list(range(n_cls))).tolist(),
        "predictions_csv": str(predictions_csv.resolve()),
        "misclassified": misclassified,
        "latency_ms": None,
        "device": dev.type,
        "threads": torch.get_num_threads(),
        "params_total": int(total),
        "params_trainable": int(trainable),
        "checkpoint_bytes": checkpoint.stat().st_size,
        "train_seconds": summary.get("train_seconds"),
        "open_set": {
            "score": score_name,
            "sweep": rows,
            "target_far": far,
            "suggested": suggested,
            "threshold_in_model": threshold,
            "threshold_info": ckpt.get("threshold_info"),
            "at_model_threshold": operating_point(rows, threshold),
            "scores": open_set_scores(logits, labels, unknown, embeddings, centroids),
        },
        "threshold_saved": None,
        "warnings": warnings,
        "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if latency:
        size = int(ckpt["preprocessing"]["input_size"])
        result["latency_ms"] = measure_latency(model, size, dev, budget_s=4.0 if dev.type == "cpu" else 2.0)
    if save_threshold:
        result["threshold_saved"] = {
            "threshold": float(suggested["threshold"]),
            "files": [str(p) for p in _threshold_targets(checkpoint)],
        }
    result["metrics_json"] = str((out / "metrics.json").resolve())
    # metrics.json first: once the checkpoints change below, it is older than them (stale for caches)
    text = json.dumps(result, indent=2, default=_jsonable)
    workspace.atomic_write_text(out / "metrics.json", text)
    if save_threshold:
        info = {k: v for k, v in suggested.items() if v is not None}
        info.update(split=split, source="evaluate")
        for path in _threshold_targets(checkpoint):
            write_threshold(path, float(suggested["threshold"]), info)
    return Evaluation.from_dict(json.loads(text))


def run_centroids(ckpt: dict[str, Any], checkpoint: Path) -> np.ndarray | None:
    """The run's class centroids: stored by training, else computed from its training faces'
    embeddings (cached in ``embeddings_train.pt``); None when the training faces are not here."""
    stored = ckpt.get("centroids")
    if isinstance(stored, torch.Tensor):
        return stored.float().numpy()
    try:
        near = load_run(checkpoint).nearest_images()
    except FacecoreError:
        return None
    if not len(near):
        return None
    classes = list(ckpt["classes"])
    labels = np.array([classes.index(c) for c in near.labels])
    return class_centroids(near.embeddings.float().numpy(), labels, len(classes))


def _read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or {} when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_predictions(
    path: Path, files: list[str], labels: np.ndarray, probs: np.ndarray, classes: list[str],
    accepted: np.ndarray,
) -> None:
    top = np.argsort(-probs, axis=1, kind="stable")[:, :3]
    write_predictions(
        path,
        (
            PredictionRow(
                file=f, true=classes[labels[i]], pred=classes[top[i, 0]],
                confidence=float(probs[i, top[i, 0]]),
                top=[(classes[k], float(probs[i, k])) for k in top[i]],
                correct=bool(top[i, 0] == labels[i]), accepted=bool(accepted[i]),
            )
            for i, f in enumerate(files)
        ),
    )  # fmt: skip


def _threshold_targets(checkpoint: Path) -> list[Path]:
    """The evaluated file, and with best.pt or last.pt, both of them."""
    if checkpoint.name in ("best.pt", "last.pt"):
        return [p for p in (checkpoint.parent / "best.pt", checkpoint.parent / "last.pt") if p.is_file()]
    return [checkpoint]


def write_threshold(path: Path, threshold: float, info: dict[str, Any]) -> None:
    """Store ``threshold`` (and how it was chosen) in the checkpoint at ``path``, atomically."""
    ckpt = load_checkpoint(path)
    ckpt["threshold"] = float(threshold)
    ckpt["threshold_info"] = info
    save_checkpoint(path, {k: v for k, v in ckpt.items() if k not in ("format", "versions")})


def cached_evaluation(
    run: str | Path, split: str = "test", *, need_latency: bool = True
) -> Evaluation | None:
    """The saved ``metrics.json`` of ``run`` on ``split`` if still valid, else None.

    Valid: newer than the checkpoint and than the dataset's manifest, for the same checkpoint
    file (name and size) and split, with its predictions.csv present (and latency measured, if
    asked for). The saved paths are absolute; a workspace moved or copied to another folder or
    machine (with the files' times kept: ``cp -a``, ``rsync -a``) keeps its evaluations, with the
    paths in the returned dict pointing at the files where they are now.
    """
    checkpoint, run_dir = resolve_run(run)
    path = eval_dir(run_dir, checkpoint, split) / "metrics.json"
    if not path.is_file() or not checkpoint.is_file():
        return None
    try:
        result = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(result, dict):
        return None
    try:
        dataset = workspace.dataset_path(str(result.get("dataset", "")))
    except FacecoreError:
        return None
    mtime = path.stat().st_mtime
    manifest = dataset / "manifest.csv"
    predictions = path.parent / "predictions.csv"
    fresh = (
        mtime >= checkpoint.stat().st_mtime
        and manifest.is_file()
        and mtime >= manifest.stat().st_mtime
        and result.get("split") == split
        and Path(str(result.get("checkpoint", ""))).name == checkpoint.name
        and result.get("checkpoint_bytes") == checkpoint.stat().st_size
        and predictions.is_file()
        and (result.get("latency_ms") is not None or not need_latency)
    )
    if not fresh:
        return None
    try:
        return Evaluation.from_dict(
            result
            | {
                "run_dir": str(run_dir.resolve()),
                "checkpoint": str(checkpoint.resolve()),
                "dataset_path": str(dataset.resolve()),
                "predictions_csv": str(predictions.resolve()),
                "metrics_json": str(path.resolve()),
            }
        )
    except ValueError:  # written by another version of facecore: evaluate again
        return None


__all__ = [
    "cached_evaluation", "eval_dir", "evaluate_run", "measure_latency", "open_set_scores",
    "predict_outputs", "resolve_run", "run_centroids", "write_threshold",
]
