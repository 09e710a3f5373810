"""A gallery's threshold, chosen at a false-accept target on faces of people it does not hold.

Strangers come from a dataset split (its ``Unknown`` class, and any class not enrolled) or from
a folder or zip of other people's photos (e.g. the LFW single-image pool). Each stranger's best
score against the gallery is compared with thresholds from 0 to 1 in steps of 0.001
(:func:`facecore.evaluate.openset.sweep`, the same sweep as the trained runs'), and the lowest threshold
whose false-accept rate is at most the target is stored (:func:`facecore.evaluate.openset.suggest_threshold`).
Known faces of the same split, when there are some, give the share of enrolled people still
named at each threshold. With no strangers at all, the embedder's published default is kept and
the gallery says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facecore.data.dataset import load_dataset
from facecore.data.images import load_rgb
from facecore.data.sources import open_source
from facecore.detect.detectors import create_detector
from facecore.errors import FacecoreError, GalleryError
from facecore.evaluate.openset import suggest_threshold, sweep
from facecore.gallery.enroll import face_of_photo, recrop
from facecore.gallery.match import GalleryModel, load_gallery_model
from facecore.gallery.store import Gallery, save_calibration
from facecore.mode import require_writable

STEPS = 1001
DEFAULT_TARGET_FAR = 0.01
_BATCH = 64


def score_crops(model: GalleryModel, crops: list[np.ndarray]) -> np.ndarray:
    """Per-person scores for crops already at the gallery's margin, in batches."""
    chunks = [model.classify(crops[i : i + _BATCH])[0] for i in range(0, len(crops), _BATCH)]
    return np.concatenate(chunks) if chunks else np.zeros((0, len(model.classes)), np.float32)


def dataset_faces(
    model: GalleryModel, dataset: str, split: str
) -> tuple[list[str], list[np.ndarray], list[str]]:
    """``(files, crops at the gallery margin, true label)`` of a dataset split; a class that is
    not enrolled is labelled ``Unknown``: for the gallery it is a stranger."""
    from facecore.data.dataset import UNKNOWN
    from facecore.data.loaders import decode_crops

    ds = load_dataset(dataset)
    items = ds.items(split)
    if not items:
        raise GalleryError(f"Dataset {ds.name!r} has no {split} faces.")
    source = float(ds.meta.get("margin", 0.25))
    crops = [recrop(c, source, model.margin) for c in decode_crops([p for p, _ in items])]
    people = set(model.classes)
    labels = [ds.classes[i] if ds.classes[i] in people else UNKNOWN for _, i in items]
    files = [p.relative_to(ds.path).as_posix() for p, _ in items]
    return files, crops, labels


def folder_faces(model: GalleryModel, src: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """Every photo of a folder or zip of strangers, its largest face cropped; refused photos listed."""
    det = create_detector("auto")
    crops, problems = [], []
    for item in open_source(src).items:
        try:
            image = load_rgb(item.read(), name=item.path)
            crops.append(face_of_photo(image, det, margin=model.margin, largest=True, label=item.path))
        except FacecoreError as exc:
            problems.append(str(exc))
    return crops, problems


def sweep_table(model: GalleryModel, scores: np.ndarray, labels: list[str]) -> list[dict[str, float | None]]:
    """The open-set sweep of gallery scores: a stranger is labelled by the extra column P."""
    p = len(model.classes)
    index = {c: i for i, c in enumerate(model.classes)}
    y = np.array([index.get(label, p) for label in labels], dtype=np.int64)
    padded = np.concatenate([scores, np.full((len(scores), 1), -2.0, np.float32)], axis=1)
    return sweep(padded, y, p, steps=STEPS)


def calibrate_gallery(
    name: str,
    *,
    dataset: str | None = None,
    split: str = "val",
    strangers: str | Path | None = None,
    target_far: float = DEFAULT_TARGET_FAR,
) -> dict[str, Any]:
    """Calibrate and store the threshold of gallery ``name``; return what was stored."""
    require_writable("Calibrating a gallery")
    if not 0 <= target_far < 1:
        raise GalleryError(f"The false-accept target must be between 0 and 1, got {target_far}.")
    if dataset is None and strangers is None:
        raise GalleryError(
            "Name the faces to calibrate on: a dataset (with --dataset) or a folder of strangers."
        )
    model = load_gallery_model(name)
    labels: list[str] = []
    scores = np.zeros((0, len(model.classes)), np.float32)
    sources, problems = [], []
    if dataset is not None:
        _, crops, labels = dataset_faces(model, dataset, split)
        scores = score_crops(model, crops)
        sources.append(f"dataset {dataset} ({split})")
    if strangers is not None:
        crops, problems = folder_faces(model, strangers)
        scores = np.concatenate([scores, score_crops(model, crops)])
        labels += ["Unknown"] * len(crops)
        sources.append(f"strangers from {Path(strangers).name}")
    n_strangers = sum(label not in model.classes for label in labels)
    rows = sweep_table(model, scores, labels)
    known = [i for i, label in enumerate(labels) if label in model.classes]
    info: dict[str, Any] = {
        "source": ", ".join(sources),
        "target_far": target_far,
        "n_strangers": n_strangers,
        "n_known": len(known),
        "problems": problems[:20],
    }
    if n_strangers == 0:
        g = model.gallery
        threshold = model.embedder.default_threshold
        info.update(
            calibrated=False,
            reason=(
                f"no faces of people outside the gallery in {info['source']} to calibrate on; using "
                f"{model.embedder.default_threshold_source}"
            ),
        )
        return _store(g, threshold, info, rows, scores, labels)
    suggested = suggest_threshold(rows, target_far)
    threshold = float(suggested["threshold"])
    info.update(
        calibrated=True,
        far=suggested.get("false_accept_rate"),
        known_accepted=suggested.get("known_accepted"),
        known_accuracy=suggested.get("known_accuracy"),
    )
    if suggested.get("reason"):
        info["reason"] = suggested["reason"]
    return _store(model.gallery, threshold, info, rows, scores, labels)


def _store(
    g: Gallery, threshold: float, info: dict[str, Any], rows: list, scores: np.ndarray, labels: list[str]
) -> dict[str, Any]:
    best = scores.max(axis=1) if scores.size else np.zeros(0)
    people = set(g.people)
    curve = {
        "sweep": rows,
        "threshold": threshold,
        "stranger_scores": [
            round(float(s), 5) for s, lab in zip(best, labels, strict=True) if lab not in people
        ],
        "known_scores": [round(float(s), 5) for s, lab in zip(best, labels, strict=True) if lab in people],
    }
    save_calibration(g.name, threshold, info, curve)
    return {"gallery": g.name, "threshold": threshold, **info}


__all__ = ["DEFAULT_TARGET_FAR", "calibrate_gallery", "dataset_faces", "score_crops", "sweep_table"]
