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
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecore import workspace
from facecore.constants import CROP_MARGIN, CROP_SIZE, UNKNOWN
from facecore.data.images import encode_jpeg, load_rgb
from facecore.errors import (
    FacecoreError,
    GalleryError,
    GalleryExistsError,
    GalleryMismatchError,
)
from facecore.gallery.embedders import DEFAULT_EMBEDDER, DEFAULT_THRESHOLDS, Embedder, create_embedder
from facecore.mode import require_enroll_allowed, require_writable

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
    missing = [f for f in files if not (path / f).is_file()]
    if missing:
        raise GalleryError(
            f"Gallery {label!r} was edited by hand: {len(missing)} enrolled face file(s) are gone "
            f"(e.g. {missing[0]}). Rebuild it from the faces that are there: {_hint(label)}"
        )
    on_disk = _face_files(path)
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
    return Gallery(path=path, meta=meta, embeddings=embeddings, person=person, files=files)


def gallery_stamp(name: str) -> int:
    """Changes whenever the gallery is written (the newest of its files' modification times)."""
    path = gallery_path(name)
    try:
        return max((path / f).stat().st_mtime_ns for f in (META_FILE, EMBEDDINGS_FILE))
    except OSError:
        return -1


def _face_files(path: Path) -> list[str]:
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


# --------------------------------------------------------------------------------------------
# writing


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _write_arrays(folder: Path, embeddings: np.ndarray, person: Sequence[str], files: Sequence[str]) -> None:
    buf = io.BytesIO()
    np.savez(
        buf,
        embeddings=np.asarray(embeddings, dtype=np.float32),
        person=np.asarray(list(person), dtype=str),
        files=np.asarray(list(files), dtype=str),
    )
    workspace.atomic_write_bytes(folder / EMBEDDINGS_FILE, buf.getvalue())


def _write_meta(folder: Path, meta: dict[str, Any]) -> None:
    meta = {**meta, "updated": _now()}
    workspace.atomic_write_text(folder / META_FILE, json.dumps(meta, indent=2))


def _default_threshold(embedder: Embedder) -> tuple[float, dict[str, Any]]:
    return float(embedder.default_threshold), {
        "calibrated": False,
        "source": "default",
        "reason": embedder.default_threshold_source,
    }


def create_gallery(name: str, *, embedder: str = DEFAULT_EMBEDDER, match: str = DEFAULT_MATCH) -> Gallery:
    """A new, empty gallery ``name`` for ``embedder``; refused when one exists."""
    require_writable("Creating a gallery")
    if match not in MATCH_RULES:
        raise GalleryError(f"Unknown match rule {match!r}; choose from {', '.join(MATCH_RULES)}.")
    emb = create_embedder(embedder)
    final = gallery_path(name)
    with workspace.staged_folder(final, lock_what="gallery name") as staged:
        if (final / META_FILE).is_file():
            raise GalleryExistsError(
                f"Gallery {final.name!r} exists already; enroll into it, or delete it first."
            )
        threshold, info = _default_threshold(emb)
        (staged / FACES_DIR).mkdir()
        _write_arrays(staged, np.zeros((0, emb.dim), np.float32), [], [])
        _write_meta(
            staged,
            {
                "format": FORMAT,
                "name": final.name,
                "embedder": emb.identity(),
                "margin": emb.margin,
                "crop_size": CROP_SIZE,
                "match": match,
                "created": _now(),
                "people": [],
                "threshold": threshold,
                "threshold_info": info,
            },
        )
    return load_gallery(final.name)


def _person_name(person: str) -> str:
    cleaned = workspace.safe_name(str(person).strip(), what="person name")
    if cleaned.lower() == UNKNOWN.lower():
        raise GalleryError(
            f"{UNKNOWN!r} cannot be enrolled as a person: in a gallery, Unknown is what a face below "
            "the threshold is called. Use Unknown faces to calibrate the threshold instead."
        )
    return cleaned


def enroll_crops(
    name: str,
    faces: Iterable[tuple[str, np.ndarray]],
    *,
    report: EnrollReport | None = None,
    create: bool = True,
    embedder: str | None = None,
    add_me: bool = False,
) -> EnrollReport:
    """Enroll face crops ``(person, RGB crop at the gallery's margin)`` into gallery ``name``.

    The gallery is created (with ``embedder``, default :data:`DEFAULT_EMBEDDER`) when it does not
    exist and ``create`` is true; an ``embedder`` named for an existing gallery that uses another
    is refused (``gallery rebuild --embedder`` moves a gallery).
    Faces already enrolled (same JPEG bytes) are skipped. All embeddings are computed before the
    gallery is locked; the new gallery is swapped in at once.
    ``add_me``: faces of the person in front of the live camera, into an existing gallery, which a
    presenter may allow in presentation mode (:func:`facecore.mode.require_enroll_allowed`).
    """
    if add_me:
        require_enroll_allowed()
        create = False
    else:
        require_writable("Enrolling faces into a gallery")
    report = report or EnrollReport(gallery=name)
    items = [(_person_name(p), c) for p, c in faces]
    if not (gallery_path(name) / META_FILE).is_file():
        if not create:
            raise GalleryError(
                f"No gallery {name!r}; create it first (python -m facecore gallery create {name})."
            )
        with contextlib.suppress(GalleryExistsError):  # created by another writer meanwhile
            create_gallery(name, embedder=embedder or DEFAULT_EMBEDDER)
    gallery = load_gallery(name)
    if embedder is not None and embedder.strip() != gallery.embedder_name:
        raise GalleryMismatchError(
            f"Gallery {gallery.name!r} uses the {gallery.embedder_name} embedder, not {embedder}; "
            f"enroll without --embedder, or move it first: python -m facecore gallery rebuild "
            f"{gallery.name} --embedder {embedder}."
        )
    report.gallery = gallery.name
    if not items:
        return report
    emb = gallery_embedder(gallery)
    jpegs = [encode_jpeg(c) for _, c in items]
    # Embed what is stored: the decoded JPEG, so a rebuild from the files gives the same vectors.
    vectors = emb.embed([load_rgb(j) for j in jpegs])
    with workspace.staged_folder(
        gallery.path, keep=[FACES_DIR, CALIBRATION_FILE], lock_what="gallery name"
    ) as st:
        current = load_gallery(gallery.path)  # as it is now, under the lock
        files, person = list(current.files), list(current.person)
        rows = [current.embeddings]
        seen = set(files)
        for (p, _), data, vec in zip(items, jpegs, vectors, strict=True):
            rel = f"{FACES_DIR}/{p}/{hashlib.sha256(data).hexdigest()[:20]}.jpg"
            if rel in seen:
                report.duplicates += 1
                continue
            seen.add(rel)
            (st / rel).parent.mkdir(parents=True, exist_ok=True)
            (st / rel).write_bytes(data)
            files.append(rel)
            person.append(p)
            rows.append(vec[None, :])
            report.added[p] = report.added.get(p, 0) + 1
        _write_arrays(st, np.concatenate(rows).reshape(len(files), -1), person, files)
        meta = dict(current.meta)
        meta["people"] = sorted(set(person) | set(meta.get("people", [])))
        _write_meta(st, meta)
    return report


def remove_person(name: str, person: str) -> Gallery:
    """Remove ``person`` and their faces from the gallery."""
    require_writable("Removing a person from a gallery")
    gallery = load_gallery(name)
    if person not in gallery.people:
        raise GalleryError(
            f"Gallery {gallery.name!r} has no person {person!r} "
            f"(people: {', '.join(gallery.people) or 'none'})."
        )
    with workspace.staged_folder(
        gallery.path, keep=[FACES_DIR, CALIBRATION_FILE], lock_what="gallery name"
    ) as st:
        current = load_gallery(gallery.path)
        keep = [i for i, p in enumerate(current.person) if p != person]
        shutil.rmtree(st / FACES_DIR / person, ignore_errors=True)
        _write_arrays(
            st, current.embeddings[keep], [current.person[i] for i in keep], [current.files[i] for i in keep]
        )
        meta = dict(current.meta)
        meta["people"] = [p for p in meta.get("people", []) if p != person]
        _write_meta(st, meta)
    return load_gallery(gallery.path)


def rename_person(name: str, old: str, new: str) -> Gallery:
    """Rename ``old`` to ``new`` (refused when ``new`` is enrolled already)."""
    require_writable("Renaming a person in a gallery")
    gallery = load_gallery(name)
    new = _person_name(new)
    if old not in gallery.people:
        raise GalleryError(f"Gallery {gallery.name!r} has no person {old!r}.")
    if new in gallery.people:
        raise GalleryError(f"Gallery {gallery.name!r} has a person {new!r} already; remove one first.")
    with workspace.staged_folder(
        gallery.path, keep=[FACES_DIR, CALIBRATION_FILE], lock_what="gallery name"
    ) as st:
        current = load_gallery(gallery.path)
        if (st / FACES_DIR / old).is_dir():
            (st / FACES_DIR / old).rename(st / FACES_DIR / new)
        files = [
            f"{FACES_DIR}/{new}/{Path(f).name}" if p == old else f
            for f, p in zip(current.files, current.person, strict=True)
        ]
        person = [new if p == old else p for p in current.person]
        _write_arrays(st, current.embeddings, person, files)
        meta = dict(current.meta)
        meta["people"] = sorted({new if p == old else p for p in meta.get("people", [])} | set(person))
        _write_meta(st, meta)
    return load_gallery(gallery.path)


def delete_gallery(name: str) -> None:
    """Delete the gallery folder."""
    require_writable("Deleting a gallery")
    final = gallery_path(name)
    if not final.is_dir():
        raise GalleryError(f"No gallery {name!r}.")
    with workspace.folder_lock(final.parent, final.name, what="gallery name"):
        aside = final.parent / f".old-{final.name}-{hashlib.sha256(final.name.encode()).hexdigest()[:8]}"
        final.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)


def rebuild_gallery(name: str, *, embedder: str | None = None) -> Gallery:
    """Embed every face under ``faces/`` again (with ``embedder``, default the gallery's own).

    Repairs a gallery edited by hand (faces deleted or added, a damaged embeddings file) and moves
    a gallery to another embedder; with another embedder the threshold goes back to that
    embedder's default until it is calibrated again.
    """
    require_writable("Rebuilding a gallery")
    path = gallery_path(name)
    try:
        meta = json.loads((path / META_FILE).read_text("utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("not a gallery file")
    except (OSError, ValueError) as exc:
        raise GalleryError(f"{path / META_FILE} cannot be read ({exc}); nothing to rebuild from.") from exc
    emb = create_embedder(embedder or meta["embedder"]["name"])
    files = _face_files(path)
    person = [Path(f).parent.name for f in files]
    crops = []
    kept_files, kept_person, problems = [], [], []
    for f, p in zip(files, person, strict=True):
        try:
            crops.append(load_rgb(path / f))
            kept_files.append(f)
            kept_person.append(p)
        except FacecoreError as exc:
            problems.append(f"{f}: {exc}")
    vectors = emb.embed(crops) if crops else np.zeros((0, emb.dim), np.float32)
    changed = emb.identity().get("name") != meta["embedder"].get("name")
    with workspace.staged_folder(
        path, keep=[FACES_DIR] if changed else [FACES_DIR, CALIBRATION_FILE], lock_what="gallery name"
    ) as st:
        for bad in problems:
            (st / bad.split(":", 1)[0]).unlink(missing_ok=True)
        _write_arrays(st, vectors, kept_person, kept_files)
        meta = {**meta, "embedder": emb.identity(), "margin": emb.margin, "people": sorted(set(kept_person))}
        if changed:
            meta["threshold"], meta["threshold_info"] = _default_threshold(emb)
        _write_meta(st, meta)
    return load_gallery(path)


def save_calibration(name: str, threshold: float, info: dict[str, Any], sweep: dict[str, Any]) -> Gallery:
    """Store a calibrated threshold (and its sweep, for the curve) in the gallery."""
    require_writable("Calibrating a gallery")
    gallery = load_gallery(name)
    with workspace.staged_folder(gallery.path, keep=[FACES_DIR], lock_what="gallery name") as st:
        current = load_gallery(gallery.path)
        _write_arrays(st, current.embeddings, current.person, current.files)
        workspace.atomic_write_text(st / CALIBRATION_FILE, json.dumps(sweep, indent=2))
        _write_meta(st, {**current.meta, "threshold": float(threshold), "threshold_info": info})
    return load_gallery(gallery.path)


__all__ = [
    "EnrollReport",
    "Gallery",
    "MATCH_RULES",
    "check_embedder",
    "create_gallery",
    "delete_gallery",
    "enroll_crops",
    "gallery_embedder",
    "gallery_path",
    "gallery_stamp",
    "list_galleries",
    "load_gallery",
    "rebuild_gallery",
    "remove_person",
    "rename_person",
    "save_calibration",
]
