"""Changing a gallery on disk: create, enroll faces, remove or rename a person, delete, rebuild,
and store a calibrated threshold.

Every change builds the whole folder anew beside it and swaps it in
(:func:`facecore.workspace.staged_folder`, under a file lock): a reader sees the old gallery or
the new one, and a failed change leaves the saved gallery exactly as it was. The layout and the
reading are :mod:`facecore.gallery.store`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facecore import workspace
from facecore.constants import CROP_SIZE
from facecore.data.images import encode_jpeg, load_rgb
from facecore.errors import FacecoreError, GalleryError, GalleryExistsError, GalleryMismatchError
from facecore.gallery.embedder_registry import create_embedder
from facecore.gallery.embedders import DEFAULT_EMBEDDER, Embedder
from facecore.gallery.store import (
    CALIBRATION_FILE,
    DEFAULT_MATCH,
    EMBEDDINGS_FILE,
    FACES_DIR,
    FORMAT,
    MATCH_RULES,
    META_FILE,
    EnrollReport,
    Gallery,
    face_files,
    gallery_embedder,
    gallery_path,
    load_gallery,
    person_name,
)
from facecore.mode import require_enroll_allowed, require_writable


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
    items = [(person_name(p), c) for p, c in faces]
    gallery = _gallery_to_enroll_into(name, create=create, embedder=embedder)
    report.gallery = gallery.name
    if not items:
        return report
    emb = gallery_embedder(gallery)
    jpegs = [encode_jpeg(c) for _, c in items]
    # Embed what is stored: the decoded JPEG, so a rebuild from the files gives the same vectors.
    vectors = emb.embed([load_rgb(j) for j in jpegs])
    _add_faces(gallery, items, jpegs, vectors, report)
    return report


def _gallery_to_enroll_into(name: str, *, create: bool, embedder: str | None) -> Gallery:
    """Gallery ``name``, created first (with ``embedder``) when it does not exist and ``create``;
    refused when ``embedder`` is named and is not the gallery's own."""
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
    return gallery


def _add_faces(
    gallery: Gallery,
    items: list[tuple[str, np.ndarray]],
    jpegs: list[bytes],
    vectors: np.ndarray,
    report: EnrollReport,
) -> None:
    """Store the faces (``jpegs``) and their embeddings in ``gallery``, swapped in whole under its
    lock; faces enrolled already (same JPEG bytes) are counted in ``report`` and skipped."""
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
    new = person_name(new)
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
    files = face_files(path)
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
    "create_gallery",
    "delete_gallery",
    "enroll_crops",
    "rebuild_gallery",
    "remove_person",
    "rename_person",
    "save_calibration",
]
