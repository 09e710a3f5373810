"""Where enrolled faces come from: a dataset, a folder or zip of photos, uploaded photos, a webcam.

Each source yields ``(person, face crop)`` pairs for :func:`facecore.gallery.edit.enroll_crops`
and reports every photo it refused (not an image, no face, several faces of similar size). A photo
with several faces is enrolled by its largest face when that face is clearly the largest (at least
:data:`CLEAR_LARGEST` times the area of the next: the person photographed, with others behind),
and the report says so; when two faces are close in size facecore cannot know which is the
person's, and the photo is refused (``largest=True`` takes the largest anyway).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecore.constants import CROP_MARGIN, CROP_SIZE, UNKNOWN
from facecore.data.dataset import load_dataset
from facecore.data.images import load_rgb
from facecore.data.sources import open_source
from facecore.detect.crop import crop_face
from facecore.detect.detection import Detection, Detector
from facecore.detect.detectors import create_detector
from facecore.errors import EnrollmentError, FacecoreError, GalleryError
from facecore.gallery.edit import enroll_crops
from facecore.gallery.embedder_registry import create_embedder
from facecore.gallery.embedders import DEFAULT_EMBEDDER
from facecore.gallery.store import EnrollReport, gallery_path, load_gallery


def recrop(crop: np.ndarray, from_margin: float, to_margin: float, size: int = CROP_SIZE) -> np.ndarray:
    """A crop made with ``from_margin`` turned into one with ``to_margin`` (same face box)."""
    if abs(from_margin - to_margin) < 1e-6 and crop.shape[0] == size:
        return crop
    h, w = crop.shape[:2]
    side = min(h, w) / (1.0 + 2.0 * from_margin)
    box = (int(round((w - side) / 2)), int(round((h - side) / 2)), int(round(side)), int(round(side)))
    return crop_face(crop, Detection(box, 1.0), margin=to_margin, size=size)


#: a photo's largest face is taken as the person's when its area is at least this many times the
#: next face's; closer calls are refused
CLEAR_LARGEST = 1.5


@dataclass(frozen=True)
class PhotoFace:
    """The face taken from a photo, and a note when the photo held others too."""

    crop: np.ndarray
    note: str | None = None


def face_of_photo(
    image_rgb: np.ndarray, detector: Detector, *, margin: float, largest: bool = False, label: str = "photo"
) -> PhotoFace:
    """The person's face of a photo, cropped at ``margin``: its only face, or its clearly largest.

    :class:`EnrollmentError` for no face, or for several faces of which none is at least
    :data:`CLEAR_LARGEST` times the area of the next (unless ``largest``).
    """
    found = detector.detect(image_rgb)
    if not found:
        raise EnrollmentError(f"{label}: no face found; use a photo where the face is clear and upright.")
    if len(found) == 1:
        return PhotoFace(crop_face(image_rgb, found[0], margin=margin, size=CROP_SIZE))
    first, second = sorted(found, key=lambda d: d.area, reverse=True)[:2]
    ratio = first.area / max(second.area, 1)
    if ratio < CLEAR_LARGEST and not largest:
        raise EnrollmentError(
            f"{label}: {len(found)} faces found and the largest is only {ratio:.1f}x the area of the "
            f"next (at least {CLEAR_LARGEST:g}x tells it is this person's); crop the photo to their "
            "face, or take the largest anyway (--largest)."
        )
    note = f"{len(found)} faces found; took the largest ({ratio:.1f}x the area of the next)"
    return PhotoFace(crop_face(image_rgb, first, margin=margin, size=CROP_SIZE), note)


def _margin_for(name: str, embedder: str | None) -> float:
    path = gallery_path(name)
    if path.is_dir():
        return load_gallery(name).margin
    return create_embedder(embedder or DEFAULT_EMBEDDER).margin


def enroll_dataset(
    name: str,
    dataset: str,
    *,
    split: str = "train",
    people: Sequence[str] | None = None,
    embedder: str | None = None,
) -> EnrollReport:
    """Enroll every face of ``split`` of ``dataset`` (the ``Unknown`` class excepted: strangers are
    for calibration), or only those of ``people``."""
    from facecore.data.loaders import decode_crops  # torch: only to enroll a dataset's crops

    ds = load_dataset(dataset)
    wanted = set(people) if people else None
    if wanted:
        missing = sorted(wanted - set(ds.classes))
        if missing:
            raise GalleryError(
                f"Dataset {ds.name!r} has no person {', '.join(missing)} (it has {', '.join(ds.classes)})."
            )
    items = [
        (p, ds.classes[i])
        for p, i in ds.items(split)
        if ds.classes[i] != UNKNOWN and (wanted is None or ds.classes[i] in wanted)
    ]
    if not items:
        raise GalleryError(f"Dataset {ds.name!r} has no {split} faces of known people to enroll.")
    margin = _margin_for(name, embedder)
    source = float(ds.meta.get("margin", CROP_MARGIN))
    crops = decode_crops([p for p, _ in items])
    faces = [(cls, recrop(c, source, margin)) for (_, cls), c in zip(items, crops, strict=True)]
    return enroll_crops(name, faces, embedder=embedder)


def _photo_faces(
    photos: Iterable[tuple[str, str, object]],
    *,
    detector: Detector,
    margin: float,
    largest: bool,
    report: EnrollReport,
) -> list[tuple[str, np.ndarray]]:
    faces = []
    for person, label, source in photos:
        try:
            data = source() if callable(source) else source
            image = load_rgb(data, name=label)  # type: ignore[arg-type]
            face = face_of_photo(image, detector, margin=margin, largest=largest, label=label)
            faces.append((person, face.crop))
            if face.note:
                report.notes.append({"source": label, "message": face.note})
        except FacecoreError as exc:
            report.problems.append({"source": label, "message": str(exc).removeprefix(f"{label}: ")})
    return faces


def enroll_photos(
    name: str,
    person: str,
    photos: Sequence[tuple[str, bytes | str | Path]],
    *,
    detector: str | Detector = "auto",
    largest: bool = False,
    embedder: str | None = None,
) -> EnrollReport:
    """Enroll ``person`` from photos ``(label, bytes or path)``: each must show one face, or one
    clearly larger than the others (see :func:`face_of_photo`)."""
    det = create_detector(detector) if isinstance(detector, str) else detector
    report = EnrollReport(gallery=name)
    margin = _margin_for(name, embedder)
    faces = _photo_faces(
        ((person, label, src) for label, src in photos),
        detector=det,
        margin=margin,
        largest=largest,
        report=report,
    )
    if not faces:
        raise EnrollmentError(
            f"No face of {person!r} could be enrolled from {len(photos)} photo(s): "
            + "; ".join(f"{p['source']}: {p['message']}" for p in report.problems)
        )
    return enroll_crops(name, faces, report=report, embedder=embedder)


def enroll_source(
    name: str,
    src: str | Path,
    *,
    detector: str | Detector = "auto",
    largest: bool = False,
    embedder: str | None = None,
) -> EnrollReport:
    """Enroll from a folder or zip with one subfolder per person (an ``Unknown`` folder is skipped)."""
    listing = open_source(src)
    det = create_detector(detector) if isinstance(detector, str) else detector
    report = EnrollReport(gallery=name)
    report.problems += [{"source": p.path, "message": p.message} for p in listing.problems]
    margin = _margin_for(name, embedder)
    photos = [
        (it.class_name, it.path, it.read) for it in listing.items if it.class_name.lower() != UNKNOWN.lower()
    ]
    faces = _photo_faces(photos, detector=det, margin=margin, largest=largest, report=report)
    if not faces:
        raise EnrollmentError(f"{src}: no face could be enrolled ({len(report.problems)} photo(s) refused).")
    return enroll_crops(name, faces, report=report, embedder=embedder)


def enroll_webcam_crops(
    name: str,
    person: str,
    crops: Sequence[np.ndarray],
    *,
    crop_margin: float = CROP_MARGIN,
    embedder: str | None = None,
) -> EnrollReport:
    """Enroll the crops an :class:`~facecore.data.enroll.EnrollSession` accepted (its checks passed)."""
    if not crops:
        raise EnrollmentError("No camera frames were accepted yet: nothing to enroll.")
    margin = _margin_for(name, embedder)
    return enroll_crops(name, [(person, recrop(c, crop_margin, margin)) for c in crops], embedder=embedder)


def enroll_add_me(name: str, person: str, crops: Sequence[np.ndarray]) -> EnrollReport:
    """Enroll the faces "Add me" captured from the live camera (RGB crops at the gallery's margin)
    into the existing gallery ``name``; allowed in presentation mode only when the presenter allows
    it (:func:`facecore.mode.require_enroll_allowed`)."""
    if not crops:
        raise EnrollmentError(f"No face of {person!r} was captured: nothing to enroll.")
    return enroll_crops(name, [(person, c) for c in crops], add_me=True)


__all__ = [
    "enroll_add_me",
    "enroll_dataset",
    "enroll_photos",
    "enroll_source",
    "enroll_webcam_crops",
    "CLEAR_LARGEST",
    "PhotoFace",
    "face_of_photo",
    "recrop",
]
