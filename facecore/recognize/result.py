"""What an evaluation returns: a run's or a gallery's figures on one split, as dataclasses.

``to_dict`` gives the JSON that ``metrics.json`` holds and ``python -m facecore evaluate --json``
(or ``gallery evaluate --json``) prints, key for key in the same order; ``from_dict`` reads it
back (a saved ``metrics.json`` that does not fit is refused with ``ValueError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class OpenSetResult:
    """How well Unknown faces are kept out: the threshold sweep and the operating points."""

    score: str  #: the unknown score thresholded (max softmax, centroid cosine, a gallery's cosine)
    sweep: list[dict[str, Any]]  #: :func:`facecore.recognize.openset.sweep_scores` rows
    target_far: float | None
    suggested: dict[str, Any]  #: :func:`facecore.recognize.openset.suggest_threshold` on this split
    threshold_in_model: float  #: the threshold the model uses (calibrated on validation)
    threshold_info: dict[str, Any] | None  #: how that threshold was chosen
    at_model_threshold: dict[str, Any]  #: the sweep row at the model's threshold
    scores: dict[str, dict[str, Any]]  #: AUROC (and more) of each unknown score

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Evaluation:
    """A trained run's or a gallery's evaluation on one split of a dataset."""

    run: str
    model: str
    epoch: int | None
    dataset: str
    dataset_path: str
    split_seed: int | None
    split: str
    n_images: int
    classes: list[str]
    unknown_class: str | None
    accuracy: float
    macro_f1: float
    weighted_f1: float
    per_class: dict[str, dict[str, float]]  #: class -> precision, recall, f1, support
    confusion_matrix: list[list[int]]  #: rows: true class, columns: predicted, in ``classes`` order
    misclassified: list[dict[str, Any]]  #: file, true, pred, confidence; most confident first
    latency_ms: dict[str, float] | None  #: ms per image by batch size; None when not measured
    device: str
    threads: int | None
    params_total: int | None
    params_trainable: int | None
    checkpoint_bytes: int
    train_seconds: float | None
    open_set: OpenSetResult
    warnings: list[str] = field(default_factory=list)
    evaluated_at: str = ""
    predictions_csv: str | None = None  #: absent when a gallery evaluation was not saved
    metrics_json: str | None = None
    # a trained run's
    run_dir: str | None = None
    checkpoint: str | None = None
    loss: float | None = None
    threshold_saved: dict[str, Any] | None = None
    # a gallery's
    gallery: str | None = None
    embedder: str | None = None
    match: str | None = None
    people: list[str] | None = None
    enrolled_faces: int | None = None
    rank1_known: float | None = None  #: known faces whose closest person is right (no threshold)

    @property
    def is_gallery(self) -> bool:
        return self.gallery is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, in the order ``metrics.json`` has always had."""
        keys = GALLERY_KEYS if self.is_gallery else RUN_KEYS
        out = {}
        for key in keys:
            value = getattr(self, key)
            if key in OPTIONAL_KEYS and value is None:
                continue
            out[key] = value.to_dict() if isinstance(value, OpenSetResult) else value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Evaluation:
        names = {f.name for f in fields(cls)}
        try:
            kwargs = {k: v for k, v in d.items() if k in names}
            kwargs["open_set"] = OpenSetResult(**d["open_set"])
            return cls(**kwargs)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an evaluation of this version: {exc}") from exc


RUN_KEYS = (
    "run", "run_dir", "checkpoint", "epoch", "model", "dataset", "dataset_path", "split_seed", "split",
    "n_images", "classes", "unknown_class", "loss", "accuracy", "macro_f1", "weighted_f1", "per_class",
    "confusion_matrix", "predictions_csv", "misclassified", "latency_ms", "device", "threads",
    "params_total", "params_trainable", "checkpoint_bytes", "train_seconds", "open_set",
    "threshold_saved", "warnings", "evaluated_at", "metrics_json",
)  # fmt: skip
GALLERY_KEYS = (
    "run", "gallery", "embedder", "match", "model", "epoch", "dataset", "dataset_path", "split_seed",
    "split", "n_images", "classes", "people", "enrolled_faces", "unknown_class", "accuracy", "macro_f1",
    "weighted_f1", "rank1_known", "per_class", "confusion_matrix", "misclassified", "latency_ms",
    "device", "threads", "params_total", "params_trainable", "checkpoint_bytes", "train_seconds",
    "open_set", "warnings", "evaluated_at", "predictions_csv", "metrics_json",
)  # fmt: skip
#: Keys left out of the JSON when None (a gallery evaluation that was not saved has no files).
OPTIONAL_KEYS = frozenset({"predictions_csv", "metrics_json"})
