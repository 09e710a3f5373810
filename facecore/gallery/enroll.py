"""Where enrolled faces come from: a dataset, a folder or zip of photos, uploaded photos, a webcam.

Each source yields ``(person, face crop)`` pairs for :func:`facecore.gallery.store.enroll_crops`
and reports every photo it refused (not an image, no face, more than one face). A photo to
enroll must show one face, the person's: with two, facecore cannot know which is theirs
(``largest=True`` takes the largest instead, for photos where the others are far behind).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from facecore.data.dataset import UNKNOWN, load_dataset
from facecore.data.images import load_rgb
from facecore.data.sources import open_source
from facecore.detect.detectors import Detection, Detector, create_detector, crop_face
from facecore.errors import EnrollmentError, FacecoreError, GalleryError
from facecore.gallery.store import CROP_SIZE, EnrollReport, enroll_crops, gallery_path, load_gallery


def recrop(crop: np.ndarray, from_margin: float, to_margin: float, size: int = CROP_SIZE) -> np.ndarray:
    """A crop made with ``from_margin`` turned into one with ``to_margin`` (same face box)."""
    if abs(from_margin - to_margin) < 1e-6 and crop.shape[0] == size:
        return crop
    h, w = crop.shape[:2]
    side = min(h, w) / (1.0 + 2.0 * from_margin)
    box = (int(round((w - side) / 2)), int(round((h - side) / 2)), int(round(side)), int(round(side)))
    return crop_face(crop, Detection(box, 1.0), margin=to_margin, size=size)


def face_of_photo(
    image_rgb: np.ndarray, detector: Detector, *, margin: float, largest: bool = False, label: str = "photo"
) -> np.ndarray:
    """The one face of a photo, cropped at ``margin``; :class:`EnrollmentError` for none or several."""
    found = detector.detect(image_rgb)
    if not found:
        raise EnrollmentError(f"{label}: no face found; use a photo where the face is clear and upright.")
    if len(found) > 1 and not largest:
        raise EnrollmentError(
            f"{label}: {len(found)} faces found; enroll a photo with only this person's face "
            "(or crop it), so nobody else is enrolled under their name."
        )
    return crop_face(image_rgb, found[0], margin=margin, size=CROP_SIZE)


def _margin_for(name: str, embedder: str) -> float:
    path = gallery_path(name)
    if path.is_dir():
        return load_gallery(name).margin
    from facecore.gallery.embedders import create_embedder

    return create_embedder(embedder).margin


def enroll_dataset(
    name: str,
    dataset: str,
    *,
    split: str = "train",
    people: Sequence[str] | None = None,
    embedder: str = "dlib_resnet",
) -> EnrollReport:
    """Enroll every face of ``split`` of ``dataset`` (the ``Unknown`` class excepted: strangers are
    for calibration), or only those of ``people``."""
    from facecore.data.loaders import decode_crops

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
    source = float(ds.meta.get("margin", 0.25))
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
            faces.append(
                (person, face_of_photo(image, detector, margin=margin, largest=largest, label=label))
            )
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
    embedder: str = "dlib_resnet",
) -> EnrollReport:
    """Enroll ``person`` from photos ``(label, bytes or path)``: each must show exactly one face."""
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
    embedder: str = "dlib_resnet",
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
    crop_margin: float = 0.25,
    embedder: str = "dlib_resnet",
) -> EnrollReport:
    """Enroll the crops an :class:`~facecore.data.enroll.EnrollSession` accepted (its checks passed)."""
    if not crops:
        raise EnrollmentError("No camera frames were accepted yet: nothing to enroll.")
    margin = _margin_for(name, embedder)
    return enroll_crops(name, [(person, recrop(c, crop_margin, margin)) for c in crops], embedder=embedder)


__all__ = [
    "enroll_dataset",
    "enroll_photos",
    "enroll_source",
    "enroll_webcam_crops",
    "face_of_photo",
    "recrop",
]
