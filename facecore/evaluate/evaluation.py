"""Evaluate a trained run on one split of its dataset: metrics, predictions, latency, open set.

``evaluate_run(run)`` loads the run's checkpoint and the dataset it was trained on, predicts
every image of the split (``test`` by default) with the checkpoint's own eval transform
(:func:`predict_split`), builds the :class:`Evaluation` it returns and writes it to
``<run>/eval_<split>/metrics.json``, beside ``predictions.csv``.

The unknown threshold stored in a run is calibrated by training on the **validation** split.
Choosing it on the test split (``save_threshold=True``) makes the test numbers optimistic:
they no longer measure faces the threshold was not tuned on. Do it only knowingly.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
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
from facecore.data.dataset import FaceDataset
from facecore.data.loaders import FaceCrops, make_loader
from facecore.data.transforms import eval_transform_from_dict
from facecore.device import for_inference, resolve_device, tune_allocator
from facecore.errors import ConfigError, DatasetError, FacecoreError
from facecore.evaluate.latency import measure_latency
from facecore.evaluate.locate import eval_dir, resolve_run, run_dataset
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
from facecore.recognize.result import Evaluation, OpenSetResult

#: The open-set score of a run whose checkpoint names none (trained before the choice existed).
OPEN_SET_SCORE = "max_softmax"


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
    dataset = run_dataset(ckpt, checkpoint)
    classes: list[str] = list(ckpt["classes"])
    unknown = classes.index(UNKNOWN) if UNKNOWN in classes else None
    items = dataset.items(split)
    if not items:
        raise DatasetError(f"Dataset {dataset.name!r} has no {split} images to evaluate on.")
    if save_threshold and (unknown is None or not any(label == unknown for _, label in items)):
        raise DatasetError(
            f"Cannot save a threshold: the {split} split has no {UNKNOWN} faces to calibrate it on."
        )
    warnings = _split_warnings(ckpt, dataset, split)
    dev = resolve_device(device)
    model = for_inference(model, dev)
    outputs = predict_split(model, ckpt, checkpoint, dataset, items, dev, batch_size=batch_size)
    out = Path(out_dir) if out_dir is not None else eval_dir(run_dir, checkpoint, split)
    result = _record(
        ckpt, checkpoint, run_dir, dataset, split, outputs,
        open_set=_open_set(outputs, ckpt, unknown, target_far),
        model=model, device=dev, out=out, warnings=warnings + outputs.warnings,
    )  # fmt: skip
    if latency:
        size = int(ckpt["preprocessing"]["input_size"])
        result.latency_ms = measure_latency(model, size, dev, budget_s=4.0 if dev.type == "cpu" else 2.0)
    if save_threshold:
        result.threshold_saved = {
            "threshold": float(result.open_set.suggested["threshold"]),
            "files": [str(p) for p in _threshold_targets(checkpoint)],
        }
    _write(out, result, outputs, unknown, checkpoint)
    return result


def _split_warnings(ckpt: dict[str, Any], dataset: FaceDataset, split: str) -> list[str]:
    """Why the figures on ``split`` may flatter the model (a re-split dataset, the train or val split)."""
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
    return warnings


# --- compute: the run's outputs on the split ---------------------------------------------------------


@dataclass
class SplitOutputs:
    """A run's outputs on every image of one split, and the unknown score it decides by."""

    files: list[str]  #: relative to the dataset folder, in the split's order
    labels: np.ndarray
    logits: np.ndarray
    embeddings: np.ndarray | None
    centroids: np.ndarray | None  #: the run's class centroids (:func:`run_centroids`)
    probs: np.ndarray
    pred: np.ndarray
    score: str  #: the open-set score thresholded: the run's, or :data:`OPEN_SET_SCORE`
    conf: np.ndarray  #: that score of each image
    warnings: list[str] = field(default_factory=list)


def predict_split(
    model: nn.Module,
    ckpt: dict[str, Any],
    checkpoint: Path,
    dataset: FaceDataset,
    items: list[tuple[Path, int]],
    device: torch.device,
    *,
    batch_size: int = 64,
) -> SplitOutputs:
    """``model``'s outputs on ``items`` (a split of ``dataset``), through the checkpoint's eval transform."""
    transform = eval_transform_from_dict(ckpt["preprocessing"])
    data = FaceCrops(items, transform, cache_dir=dataset.path / ".cache")
    loader = make_loader(data, batch_size=batch_size, shuffle=False, workers=0, seed=0)
    logits, labels, embeddings = predict_outputs(model, loader, device)
    probs = _softmax(logits)
    centroids = run_centroids(ckpt, checkpoint)
    scores = unknown_scores(logits, embeddings, centroids)
    score_name = str(ckpt.get("open_set_score") or OPEN_SET_SCORE)
    warnings = []
    if score_name not in scores:
        warnings.append(f"the run decides Unknown by {score_name}, which cannot be computed here; "
                        f"{OPEN_SET_SCORE} is used instead.")
        score_name = OPEN_SET_SCORE
    return SplitOutputs(
        files=[p.relative_to(dataset.path).as_posix() for p, _ in items],
        labels=labels, logits=logits, embeddings=embeddings, centroids=centroids, probs=probs,
        pred=probs.argmax(1), score=score_name, conf=scores[score_name], warnings=warnings,
    )  # fmt: skip


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# --- metrics: the record ---------------------------------------------------------------------------


def _record(
    ckpt: dict[str, Any],
    checkpoint: Path,
    run_dir: Path,
    dataset: FaceDataset,
    split: str,
    outputs: SplitOutputs,
    *,
    open_set: OpenSetResult,
    model: nn.Module,
    device: torch.device,
    out: Path,
    warnings: list[str],
) -> Evaluation:
    """The :class:`Evaluation` of ``outputs`` (latency and a saved threshold still to come)."""
    classes: list[str] = list(ckpt["classes"])
    total, trainable = count_parameters(model)
    summary = _read_json(run_dir / "summary.json")
    return Evaluation(
        run=run_dir.name, run_dir=str(run_dir.resolve()), checkpoint=str(checkpoint.resolve()),
        epoch=int(ckpt.get("epoch", 0)), model=ckpt["model"], dataset=dataset.name,
        dataset_path=str(dataset.path.resolve()), split_seed=dataset.meta.get("seed"), split=split,
        n_images=len(outputs.files), classes=classes, unknown_class=UNKNOWN if UNKNOWN in classes else None,
        **_scores(outputs, classes),
        predictions_csv=str((out / "predictions.csv").resolve()),
        misclassified=_misclassified(outputs, classes), latency_ms=None, device=device.type,
        threads=torch.get_num_threads(), params_total=int(total), params_trainable=int(trainable),
        checkpoint_bytes=checkpoint.stat().st_size,
        train_seconds=summary.get("train_seconds"), open_set=open_set, threshold_saved=None,
        warnings=warnings, evaluated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        metrics_json=str((out / "metrics.json").resolve()),
    )  # fmt: skip


def _scores(outputs: SplitOutputs, classes: list[str]) -> dict[str, Any]:
    """Loss, accuracy, F1 (macro and weighted, over the classes present), per class, confusion matrix."""
    labels, pred, probs = outputs.labels, outputs.pred, outputs.probs
    every = list(range(len(classes)))
    present = sorted(set(labels.tolist()))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, pred, labels=every, zero_division=0
    )
    return {
        "loss": float(log_loss(labels, probs, labels=every)),
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, pred, labels=present, average="weighted", zero_division=0)),
        "per_class": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(support[i])}
            for i, c in enumerate(classes)
        },
        "confusion_matrix": confusion_matrix(labels, pred, labels=every).tolist(),
    }  # fmt: skip


def _misclassified(outputs: SplitOutputs, classes: list[str]) -> list[dict[str, Any]]:
    """The images named wrongly: file, true, pred, confidence; most confident first."""
    labels, pred, probs = outputs.labels, outputs.pred, outputs.probs
    return sorted(
        (
            {"file": outputs.files[i], "true": classes[labels[i]], "pred": classes[pred[i]],
             "confidence": float(probs[i].max())}
            for i in np.flatnonzero(pred != labels)
        ),
        key=lambda r: -r["confidence"],
    )  # fmt: skip


def _open_set(
    outputs: SplitOutputs, ckpt: dict[str, Any], unknown: int | None, target_far: float | None
) -> OpenSetResult:
    """The threshold sweep on the split, the suggested threshold and the model's own operating point."""
    threshold = float(ckpt.get("threshold", 0.5))
    rows = sweep_scores(outputs.conf, outputs.pred, outputs.labels, unknown)
    far = target_far if target_far is not None else float((ckpt.get("config") or {}).get("target_far", 0.01))
    return OpenSetResult(
        score=outputs.score,
        sweep=rows,
        target_far=far,
        suggested=suggest_threshold(rows, far),
        threshold_in_model=threshold,
        threshold_info=ckpt.get("threshold_info"),
        at_model_threshold=dict(operating_point(rows, threshold)),
        scores=open_set_scores(
            outputs.logits, outputs.labels, unknown, outputs.embeddings, outputs.centroids
        ),
    )


# --- writing ---------------------------------------------------------------------------------------


def _write(
    out: Path, result: Evaluation, outputs: SplitOutputs, unknown: int | None, checkpoint: Path
) -> None:
    """``predictions.csv`` and ``metrics.json`` in ``out``, then a saved threshold into the checkpoints."""
    out.mkdir(parents=True, exist_ok=True)
    threshold = result.open_set.threshold_in_model
    accepted = (outputs.conf >= threshold) & (outputs.pred != unknown if unknown is not None else True)
    _write_predictions(out / "predictions.csv", outputs, result.classes, accepted)
    # metrics.json first: once the checkpoints change below, it is older than them (stale for caches)
    text = json.dumps(result.to_dict(), indent=2, default=_jsonable)
    workspace.atomic_write_text(out / "metrics.json", text)
    if result.threshold_saved:
        suggested = result.open_set.suggested
        info = {k: v for k, v in suggested.items() if v is not None}
        info.update(split=result.split, source="evaluate")
        for path in _threshold_targets(checkpoint):
            write_threshold(path, float(suggested["threshold"]), info)


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


def _write_predictions(path: Path, outputs: SplitOutputs, classes: list[str], accepted: np.ndarray) -> None:
    """One ``predictions.csv`` row per image: its truth, the top three classes, correct, accepted."""
    files, labels, probs = outputs.files, outputs.labels, outputs.probs
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


__all__ = [
    "OPEN_SET_SCORE", "SplitOutputs", "evaluate_run", "open_set_scores", "predict_outputs", "predict_split",
    "run_centroids", "write_threshold",
]  # fmt: skip
