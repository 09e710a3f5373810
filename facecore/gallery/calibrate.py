"""A gallery's threshold, chosen at a false-accept target on faces of people it does not hold.

Strangers come from a dataset split (its ``Unknown`` class, and any class not enrolled) or from
a folder or zip of other people's photos (e.g. the LFW single-image pool). Each stranger's best
score against the gallery is compared with thresholds from 0 to 1 in steps of 0.001
(:func:`facecore.recognize.openset.sweep`, the same sweep as the trained runs'), and the lowest
threshold whose false-accept rate is at most the target is stored
(:func:`facecore.recognize.openset.suggest_threshold`).
Known faces of the same split, when there are some, give the share of enrolled people still
named at each threshold. Calibration cannot fail in silence: with fewer strangers than the target
needs (:func:`min_strangers`, 100 for 1%), it is refused with the count and what to add, unless
the caller explicitly calibrates on the few (``allow_few``) or keeps the embedder's measured
default (``keep_default``, and the gallery says it is not calibrated).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from facecore.constants import CROP_MARGIN, UNKNOWN
from facecore.data.dataset import load_dataset
from facecore.data.images import load_rgb
from facecore.data.loaders import decode_crops
from facecore.data.sources import open_source
from facecore.detect.detectors import create_detector
from facecore.errors import CalibrationError, FacecoreError, GalleryError
from facecore.gallery.edit import save_calibration
from facecore.gallery.enroll import face_of_photo, recrop
from facecore.gallery.match import GalleryModel, load_gallery_model
from facecore.gallery.store import Gallery
from facecore.mode import require_writable
from facecore.recognize.openset import suggest_threshold, sweep

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
    ds = load_dataset(dataset)
    items = ds.items(split)
    if not items:
        raise GalleryError(f"Dataset {ds.name!r} has no {split} faces.")
    source = float(ds.meta.get("margin", CROP_MARGIN))
    crops = [recrop(c, source, model.margin) for c in decode_crops([p for p, _ in items])]
    people = set(model.classes)
    labels = [ds.classes[i] if ds.classes[i] in people else UNKNOWN for _, i in items]
    files = [p.relative_to(ds.path).as_posix() for p, _ in items]
    return files, crops, labels


def folder_faces(model: GalleryModel, src: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """Every photo of a folder or zip of strangers (flat, or one folder per person), its largest
    face cropped; the photos refused, with their reasons."""
    det = create_detector("auto")
    listing = open_source(src, loose=True)
    crops, problems = [], [f"{p.path}: {p.message}" for p in listing.problems]
    for item in listing.items:
        try:
            image = load_rgb(item.read(), name=item.path)
            crops.append(face_of_photo(image, det, margin=model.margin, largest=True, label=item.path).crop)
        except FacecoreError as exc:
            problems.append(str(exc))
    return crops, problems


def min_strangers(target_far: float) -> int:
    """Stranger faces needed to calibrate at ``target_far``: enough that one accepted stranger is
    a false-accept rate of at most the target (100 for 1%)."""
    return math.ceil(1.0 / target_far - 1e-9)


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
    strangers: str | Path | bytes | None = None,
    target_far: float = DEFAULT_TARGET_FAR,
    allow_few: bool = False,
    keep_default: bool = False,
) -> dict[str, Any]:
    """Calibrate and store the threshold of gallery ``name``; return what was stored.

    Strangers come from ``dataset``'s ``split`` (its Unknown class and people not enrolled) and/or
    ``strangers``, a folder or zip of photos (flat, or one folder per person; a zip may be given
    as bytes). Fewer usable stranger faces than :func:`min_strangers` needs for ``target_far``
    raise :class:`CalibrationError` saying how many were found and what to add, unless
    ``allow_few`` (calibrate on them anyway: the threshold sits just above the most similar
    stranger, at a resolution of one in their number) or ``keep_default`` (store the embedder's
    measured default, marked not calibrated).
    """
    require_writable("Calibrating a gallery")
    if not 0 < target_far < 1:
        raise GalleryError(f"The false-accept target must be between 0 and 1 (exclusive), got {target_far}.")
    if dataset is None and strangers is None:
        raise GalleryError(
            "Name the faces to calibrate on: a dataset (with --dataset) or a folder of strangers."
        )
    model = load_gallery_model(name)
    scores, labels, sources, problems = _scored_faces(model, dataset, split, strangers)
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
    need = min_strangers(target_far)
    few = n_strangers < need
    if few and not keep_default and not (allow_few and n_strangers > 0):
        raise CalibrationError(_too_few(name, info, need, len(problems), allow_few), found=n_strangers)
    if few and keep_default:
        default = model.embedder.default_threshold
        info.update(
            calibrated=False,
            reason=(
                f"{n_strangers} stranger face(s) in {info['source']}, fewer than the {need} a "
                f"{target_far:.1%} false-accept rate needs; kept {model.embedder.default_threshold_source}"
            ),
        )
        return _store(model.gallery, default, info, rows, scores, labels)
    suggested = suggest_threshold(rows, target_far)
    threshold = float(suggested["threshold"])
    info.update(
        calibrated=True,
        far=suggested.get("false_accept_rate"),
        known_accepted=suggested.get("known_accepted"),
        known_accuracy=suggested.get("known_accuracy"),
    )
    reasons = [suggested["reason"]] if suggested.get("reason") else []
    if few:
        info["coarse"] = True
        reasons.append(
            f"only {n_strangers} strangers (a {target_far:.1%} rate needs {need}): the threshold sits "
            f"just above the most similar stranger, and the false-accept rate is known to 1 in {n_strangers}"
        )
    if reasons:
        info["reason"] = "; ".join(reasons)
    return _store(model.gallery, threshold, info, rows, scores, labels)


def _scored_faces(
    model: GalleryModel, dataset: str | None, split: str, strangers: str | Path | bytes | None
) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """The faces to calibrate on, scored: ``(scores, labels, sources named, photos refused)``."""
    labels: list[str] = []
    scores = np.zeros((0, len(model.classes)), np.float32)
    sources, problems = [], []
    if dataset is not None:
        _, crops, labels = dataset_faces(model, dataset, split)
        scores = score_crops(model, crops)
        sources.append(f"dataset {dataset} ({split})")
    if strangers is not None:
        with _as_path(strangers) as path:
            crops, problems = folder_faces(model, path)
        scores = np.concatenate([scores, score_crops(model, crops)])
        labels += ["Unknown"] * len(crops)
        where = "an upload" if isinstance(strangers, bytes) else Path(strangers).name
        sources.append(f"strangers from {where}")
    return scores, labels, sources, problems


def _too_few(name: str, info: dict[str, Any], need: int, refused: int, allow_few: bool) -> str:
    n, far = info["n_strangers"], info["target_far"]
    found = f"{n} usable stranger face(s) in {info['source']}" + (
        f" ({refused} photo(s) refused: no face or not an image)" if refused else ""
    )
    ways = [
        "add photos of people who are not in the gallery (--strangers FOLDER_OR_ZIP: a flat folder, "
        "one folder per person, or a zip of either)"
    ]
    if n > 0:
        ways.append(f"raise --target-far to {1.0 / n:.3f} or more")
        if not allow_few:
            ways.append("calibrate on these anyway with --allow-few")
    ways.append("keep the embedder's default threshold with --keep-default")
    return (
        f"Cannot calibrate gallery {name!r}: {found}; a false-accept rate of {far:.1%} needs at "
        f"least {need}. Either " + ", or ".join(ways) + "."
    )


@contextlib.contextmanager
def _as_path(strangers: str | Path | bytes) -> Iterator[Path]:
    """A path for ``strangers``: itself, or an uploaded zip's bytes in a temporary file."""
    if not isinstance(strangers, bytes):
        yield Path(strangers)
        return
    with tempfile.TemporaryDirectory(prefix="facecore-strangers-") as tmp:
        path = Path(tmp) / "strangers.zip"
        path.write_bytes(strangers)
        yield path


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


__all__ = [
    "DEFAULT_TARGET_FAR",
    "calibrate_gallery",
    "dataset_faces",
    "min_strangers",
    "score_crops",
    "sweep_table",
]
