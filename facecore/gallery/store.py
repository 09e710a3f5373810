"""The gallery store: enrolled people's faces and their embeddings, under ``galleries/<name>/``.

Layout::

    gallery.json            name, embedder (its identity), match rule, threshold and how it was chosen
    embeddings.npz          embeddings (N x D float32, unit rows), person (N), files (N): no pickles
    calibration.json        the threshold sweep of the last calibration (for the curve)
    faces/<person>/<id>.jpg the enrolled face crops (256x256, face box centred with the gallery margin),
                            so the gallery can be rebuilt for another embedder

Every change builds the whole folder anew beside it and swaps it in
(:func:`facecore.workspace.staged_folder`, under a file lock): a reader sees the old gallery or
the new one, and a failed enrollment leaves the saved gallery exactly as it was. A gallery edited
by hand is checked when loaded and refused with a message naming what does not fit.

This module reads: the layout, :class:`Gallery`, :func:`load_gallery` and its checks;
:mod:`facecore.gallery.edit` writes (create, enroll, remove, rename, delete, rebuild, calibrate).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecore import workspace
from facecore.constants import CROP_MARGIN, UNKNOWN
from facecore.errors import GalleryError, GalleryMismatchError
from facecore.gallery.embedder_registry import create_embedder
from facecore.gallery.embedders import DEFAULT_THRESHOLDS, Embedder

FORMAT = "facecore.gallery/1"
META_FILE = "gallery.json"
EMBEDDINGS_FILE = "embeddings.npz"
CALIBRATION_FILE = "calibration.json"
FACES_DIR = "faces"
#: How a person's score is made from the similarities to their enrolled faces.
MATCH_RULES = ("max", "top3")
DEFAULT_MATCH = "max"


@dataclass
class Gallery:
    """A loaded, checked gallery."""

    path: Path
    meta: dict[str, Any]
    embeddings: np.ndarray  # N x D float32, unit rows
    person: list[str]  # N
    files: list[str]  # N, relative to path

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def embedder_name(self) -> str:
        return str(self.meta["embedder"]["name"])

    @property
    def margin(self) -> float:
        return float(self.meta.get("margin", CROP_MARGIN))

    @property
    def match(self) -> str:
        return str(self.meta.get("match", DEFAULT_MATCH))

    @property
    def people(self) -> list[str]:
        """Enrolled people, sorted."""
        return sorted(set(self.person) | set(self.meta.get("people", [])))

    def counts(self) -> dict[str, int]:
        """Faces enrolled per person."""
        out = {p: 0 for p in self.people}
        for p in self.person:
            out[p] += 1
        return out

    @property
    def calibrated(self) -> bool:
        return bool(self.threshold_info.get("calibrated"))

    @property
    def threshold(self) -> float:
        """The calibrated threshold; for a gallery never calibrated, its embedder's measured
        default as facecore has it now (so galleries made before a better default get it too)."""
        if not self.calibrated and self.embedder_name in DEFAULT_THRESHOLDS:
            return DEFAULT_THRESHOLDS[self.embedder_name]
        return float(self.meta["threshold"])

    @property
    def threshold_info(self) -> dict[str, Any]:
        info = self.meta.get("threshold_info")
        return info if isinstance(info, dict) else {}

    def uncalibrated_note(self) -> str | None:
        """One line for every output that uses this gallery while it is not calibrated (with the
        command that calibrates it), or None once it is."""
        if self.calibrated:
            return None
        return (
            f"gallery {self.name!r} is not calibrated: threshold {self.threshold:.3f} is the "
            f"{self.embedder_name} default; calibrate it on your strangers: python -m facecore "
            f"gallery calibrate {self.name} --strangers FOLDER_OR_ZIP"
        )

    def faces_of(self, person: str) -> list[Path]:
        return [self.path / f for f, p in zip(self.files, self.person, strict=True) if p == person]

    def calibration(self) -> dict[str, Any] | None:
        """The last calibration's sweep (``calibration.json``), or None."""
        try:
            data = json.loads((self.path / CALIBRATION_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def summary(self) -> dict[str, Any]:
        """What ``gallery list`` and ``gallery show`` print."""
        info = self.threshold_info
        return {
            "name": self.name,
            "path": str(self.path),
            "embedder": self.embedder_name,
            "match": self.match,
            "people": self.counts(),
            "faces": len(self.files),
            "threshold": self.threshold,
            "calibrated": self.calibrated,
            "threshold_source": info.get("source"),
            "target_far": info.get("target_far"),
            "updated": self.meta.get("updated"),
        }


@dataclass
class EnrollReport:
    """What an enrollment did: faces added per person, and each photo refused with its reason."""

    gallery: str
    added: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)
    #: photos enrolled with a remark (e.g. several faces, the clearly largest taken)
    notes: list[dict[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.added.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "gallery": self.gallery,
            "added": self.added,
            "total": self.total,
            "duplicates": self.duplicates,
            "problems": self.problems,
            "notes": self.notes,
        }

    def __str__(self) -> str:
        lines = [
            f"Enrolled {self.total} face(s) into gallery {self.gallery!r}: "
            + (", ".join(f"{p} +{n}" for p, n in sorted(self.added.items())) or "none")
        ]
        if self.duplicates:
            lines.append(f"{self.duplicates} face(s) already enrolled, skipped")
        lines += [f"  {p['source']}: {p['message']}" for p in self.problems]
        lines += [f"  {n['source']}: {n['message']}" for n in self.notes]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# reading


def gallery_path(name: str) -> Path:
    return workspace.galleries_dir() / workspace.safe_name(name, what="gallery name")


def list_galleries() -> list[str]:
    """Names of the galleries in the workspace (folders with a gallery.json), sorted."""
    root = workspace.galleries_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / META_FILE).is_file())


def _hint(name: str) -> str:
    return f"python -m facecore gallery rebuild {name}"


def load_gallery(name: str | Path) -> Gallery:
    """Load and check a gallery (a name under ``galleries/`` or a folder)."""
    path = Path(name) if isinstance(name, Path) else gallery_path(name)
    label = path.name
    meta = _read_meta(path, label)
    embeddings, person, files = _read_arrays(path, meta, label)
    _check_faces(path, label, person, files)
    return Gallery(path=path, meta=meta, embeddings=embeddings, person=person, files=files)


def _read_meta(path: Path, label: str) -> dict[str, Any]:
    """``gallery.json``, checked: a facecore gallery file with a threshold that is a number."""
    meta_file = path / META_FILE
    if not meta_file.is_file():
        have = ", ".join(list_galleries()) or "none yet"
        raise GalleryError(f"No gallery {label!r} (no {meta_file}). Galleries: {have}.")
    try:
        meta = json.loads(meta_file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise GalleryError(f"{meta_file} is damaged ({exc}); restore it or delete the gallery.") from exc
    if (
        not isinstance(meta, dict)
        or meta.get("format") != FORMAT
        or not isinstance(meta.get("embedder"), dict)
    ):
        raise GalleryError(f"{meta_file} is not a facecore gallery file (format {FORMAT!r} expected).")
    try:
        float(meta["threshold"])
    except (KeyError, TypeError, ValueError) as exc:
        raise GalleryError(f"{meta_file}: the threshold is missing or not a number.") from exc
    return meta


def _read_arrays(path: Path, meta: dict[str, Any], label: str) -> tuple[np.ndarray, list[str], list[str]]:
    """``embeddings.npz``, checked against ``gallery.json``: ``(embeddings, person, files)``."""
    emb_file = path / EMBEDDINGS_FILE
    if not emb_file.is_file():
        raise GalleryError(f"{emb_file} is missing; rebuild it from the enrolled faces: {_hint(label)}")
    try:
        with np.load(emb_file, allow_pickle=False) as data:
            embeddings = np.asarray(data["embeddings"], dtype=np.float32)
            person = [str(p) for p in data["person"].tolist()]
            files = [str(f) for f in data["files"].tolist()]
    except Exception as exc:  # noqa: BLE001 - any damage to the file reads the same to the user
        raise GalleryError(
            f"{emb_file} is damaged or not a gallery embeddings file ({type(exc).__name__}: {exc}); "
            f"rebuild it from the enrolled faces: {_hint(label)}"
        ) from exc
    dim = int(meta["embedder"].get("dim", 0))
    n = len(person)
    if (
        embeddings.ndim != 2
        or embeddings.shape[0] != n
        or len(files) != n
        or (n and embeddings.shape[1] != dim)
    ):
        raise GalleryError(
            f"{emb_file} does not fit {META_FILE}: {embeddings.shape} embeddings for {n} people entries and "
            f"{len(files)} files, {dim}-d expected. Rebuild it: {_hint(label)}"
        )
    if n and not np.isfinite(embeddings).all():
        raise GalleryError(f"{emb_file} holds values that are not numbers. Rebuild it: {_hint(label)}")
    return embeddings, person, files


def _check_faces(path: Path, label: str, person: list[str], files: list[str]) -> None:
    """Refuse a gallery whose face files are not the enrolled ones, each under its person."""
    missing = [f for f in files if not (path / f).is_file()]
    if missing:
        raise GalleryError(
            f"Gallery {label!r} was edited by hand: {len(missing)} enrolled face file(s) are gone "
            f"(e.g. {missing[0]}). Rebuild it from the faces that are there: {_hint(label)}"
        )
    on_disk = face_files(path)
    extra = sorted(set(on_disk) - set(files))
    if extra:
        raise GalleryError(
            f"Gallery {label!r} was edited by hand: {len(extra)} face file(s) are not enrolled "
            f"(e.g. {extra[0]}). Rebuild it to enroll them: {_hint(label)}"
        )
    wrong = [f for f, p in zip(files, person, strict=True) if Path(f).parent.name != p]
    if wrong:
        raise GalleryError(
            f"Gallery {label!r}: {wrong[0]} is filed under another person. Rebuild it: {_hint(label)}"
        )


def gallery_stamp(name: str) -> int:
    """Changes whenever the gallery is written (the newest of its files' modification times)."""
    path = gallery_path(name)
    try:
        return max((path / f).stat().st_mtime_ns for f in (META_FILE, EMBEDDINGS_FILE))
    except OSError:
        return -1


def face_files(path: Path) -> list[str]:
    """The face files under the gallery folder ``path``'s ``faces/``, relative to it, sorted."""
    root = path / FACES_DIR
    if not root.is_dir():
        return []
    return sorted(
        p.relative_to(path).as_posix() for p in root.glob("*/*") if p.is_file() and not p.name.startswith(".")
    )


def check_embedder(gallery: Gallery, embedder: Embedder) -> None:
    """Raise :class:`GalleryMismatchError` unless ``embedder`` made ``gallery``'s embeddings."""
    want = gallery.meta["embedder"]
    have = embedder.identity()
    if want.get("name") != have.get("name") or int(want.get("dim", -1)) != int(have.get("dim", -2)):
        raise GalleryMismatchError(
            f"Gallery {gallery.name!r} was built with the {want.get('name')} embedder ({want.get('dim')}-d); "
            f"its embeddings cannot be compared with {have.get('name')} ({have.get('dim')}-d). Use "
            f"{want.get('name')}, or rebuild the gallery for the other one: "
            f"python -m facecore gallery rebuild {gallery.name} --embedder {have.get('name')}"
        )


def gallery_embedder(gallery: Gallery, embedder: str | Embedder | None = None) -> Embedder:
    """The embedder for ``gallery``: its own by default, checked to match."""
    emb = (
        create_embedder(gallery.embedder_name)
        if embedder is None
        else (create_embedder(embedder) if isinstance(embedder, str) else embedder)
    )
    check_embedder(gallery, emb)
    return emb


def person_name(person: str) -> str:
    """``person`` as a name to enroll (a safe folder name); ``Unknown`` is refused."""
    cleaned = workspace.safe_name(str(person).strip(), what="person name")
    if cleaned.lower() == UNKNOWN.lower():
        raise GalleryError(
            f"{UNKNOWN!r} cannot be enrolled as a person: in a gallery, Unknown is what a face below "
            "the threshold is called. Use Unknown faces to calibrate the threshold instead."
        )
    return cleaned


#: the old private name, for facecore.live.addme, which imports it from here


__all__ = [
    "EnrollReport",
    "Gallery",
    "MATCH_RULES",
    "check_embedder",
    "face_files",
    "gallery_embedder",
    "gallery_path",
    "gallery_stamp",
    "list_galleries",
    "load_gallery",
    "person_name",
]
