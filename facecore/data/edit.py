"""Editing a dataset in place: rename or delete a person, delete an image, settle the images where
no face was found, and add enrollment crops.

Each edit is a change run by :func:`facecore.data.staged_edit.run_edit` on a staged copy of the
dataset, swapped in whole: a failed or interrupted edit leaves the dataset exactly as it was.

Splits: no edit moves an image that has a split to another split. Images that gain a place in
the dataset (a resolved no-face image, enrollment crops) get one from
:func:`facecore.data.splits.assign_splits` with every existing assignment kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import Literal

import cv2
import numpy as np

from facecore import workspace
from facecore.constants import CROP_SIZE, SPLITS, UNKNOWN
from facecore.data.images import IMAGE_EXTENSIONS, encode_jpeg, load_rgb
from facecore.data.manifest import NOFACE_DIR, STORED, ManifestRow
from facecore.data.sources import SourceItem, SourceListing, SourceProblem
from facecore.data.staged_edit import (
    EditResult,
    EditState,
    class_names,
    find_row,
    finish_edit,
    remove_file,
    require_class,
    run_edit,
    split_warnings,
)
from facecore.detect.crop import centre_crop
from facecore.errors import DatasetError, ImageError
from facecore.mode import require_writable

NoFaceAction = Literal["keep", "centre_crop", "delete"]
NOFACE_ACTIONS = ("keep", "centre_crop", "delete")


# --- names -------------------------------------------------------------------------------------


def check_class_name(name: str) -> str:
    """``name`` as a class (person) name, or a :class:`DatasetError` saying what is wrong with it.

    Unlike an import, which renames bad folder names with a warning, a name typed by hand is
    refused with a suggestion, so the class is called exactly what the person typed.
    ``unknown`` in any case is the :data:`~facecore.data.dataset.UNKNOWN` class.
    """
    text = unicodedata.normalize("NFC", (name or "").strip())
    if not text:
        raise DatasetError("The person's name is empty; type a name.")
    cleaned = workspace.safe_name(text, what="person's name")
    if cleaned != text:
        raise DatasetError(
            f"The name {name!r} cannot be a folder name on every system (it has one of "
            '/ \\ : * ? " < > |, a control character, leading or trailing dots, or is over 120 '
            f"characters); try {cleaned!r}."
        )
    if cleaned == NOFACE_DIR:
        raise DatasetError(f"{NOFACE_DIR!r} is reserved for the images where no face was found.")
    return UNKNOWN if cleaned.casefold() == UNKNOWN.casefold() else cleaned


# --- the edits ---------------------------------------------------------------------------------


def rename_class(name: str, old: str, new: str) -> EditResult:
    """Rename person ``old`` to ``new`` (folders, manifest, dataset.json); splits are unchanged."""
    target = check_class_name(new)

    def change(state: EditState) -> EditResult:
        require_class(state, old)
        if target == old:
            raise DatasetError(f"The person is already called {old!r}.")
        clash = [c for c in class_names(state.rows) if c.casefold() == target.casefold() and c != old]
        if clash:
            raise DatasetError(
                f"Dataset {state.name!r} already has a person {clash[0]!r}; choose another name "
                "(names that differ only in letter case would clash on Windows and macOS)."
            )
        for parent in (state.staged, state.staged / NOFACE_DIR):
            if (parent / old).is_dir():
                os.rename(parent / old, parent / f".renaming-{target}")
                os.rename(parent / f".renaming-{target}", parent / target)
        n = 0
        for r in state.rows:
            if r.class_name != old:
                continue
            r.class_name = target
            parts = list(PurePosixPath(r.file).parts) if r.file else []
            if parts[:1] == [old]:
                parts[0] = target
            elif parts[:2] == [NOFACE_DIR, old]:
                parts[1] = target
            r.file = PurePosixPath(*parts).as_posix() if parts else r.file
            n += r.status in STORED
        return EditResult(state.name, "", f"Renamed {old!r} to {target!r} ({n} images) in {state.name!r}.")

    return run_edit(name, "rename", change)


def delete_class(name: str, cls: str) -> EditResult:
    """Delete person ``cls``: its images, its no-face images and its manifest rows."""

    def change(state: EditState) -> EditResult:
        require_class(state, cls)
        gone = [r for r in state.rows if r.class_name == cls]
        state.rows = [r for r in state.rows if r.class_name != cls]
        for parent in (state.staged, state.staged / NOFACE_DIR):
            shutil.rmtree(parent / cls, ignore_errors=True)
        n = sum(r.status in STORED for r in gone)
        return EditResult(
            state.name,
            "",
            f"Deleted {cls!r} ({n} images) from {state.name!r}.",
            split_warnings(state, []),
            [r.file for r in gone if r.file],
        )

    return run_edit(name, "delete-class", change)


def delete_image(name: str, file: str) -> EditResult:
    """Delete one image (a stored face or a no-face image) and its manifest row."""

    def change(state: EditState) -> EditResult:
        row = find_row(state, file)
        remove_file(state, row.file)
        state.rows.remove(row)
        return EditResult(
            state.name,
            "",
            f"Deleted {row.file} ({row.class_name}, {row.split or row.status}) from {state.name!r}.",
            split_warnings(state, [row.class_name]),
            [row.file],
        )

    return run_edit(name, "delete-image", change)


def letterbox(image_rgb: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The whole image, padded with black to a square and resized to ``size`` x ``size``."""
    h, w = image_rgb.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = cv2.copyMakeBorder(
        image_rgb, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=(0, 0, 0)
    )
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def resolve_noface(name: str, file: str, action: NoFaceAction) -> EditResult:
    """Settle an image where no face was found: ``keep`` it whole (padded square, resized),
    keep a ``centre_crop``, or ``delete`` it. A kept image joins its person with a split."""
    if action not in NOFACE_ACTIONS:
        raise DatasetError(f"Unknown action {action!r} for a no-face image; use keep, centre_crop or delete.")

    def change(state: EditState) -> EditResult:
        row = find_row(state, file)
        if row.status != "no_face":
            raise DatasetError(f"{row.file} is not an image where no face was found (it is {row.status}).")
        old = row.file
        if action == "delete":
            remove_file(state, old)
            state.rows.remove(row)
            return EditResult(state.name, "", f"Deleted {old} from {state.name!r}.", [], [old])
        try:
            image = load_rgb(state.staged / old, name=old)
        except ImageError as exc:
            raise DatasetError(f"Cannot read {old} to keep it: {exc}") from exc
        size = int(state.meta.get("crop_size", CROP_SIZE))
        crop = letterbox(image, size) if action == "keep" else centre_crop(image, size=size)
        rel = PurePosixPath(row.class_name, PurePosixPath(old).name).as_posix()
        workspace.atomic_write_bytes(state.staged / rel, encode_jpeg(crop))
        remove_file(state, old)
        row.file, row.detector = rel, "manual"
        if action == "keep":
            row.status, row.message = "ok", "no face found; kept whole (padded and resized) by hand"
        else:
            row.status, row.message = "centre_crop", "no face found; centre crop kept by hand"
        result = EditResult(state.name, "", "", [], [old, rel])
        finish_edit(state)  # gives the row its split, so the message can name it
        result.message = f"Kept {rel} in {row.class_name!r} ({row.split or 'no split yet'})."
        result.warnings = split_warnings(state, [])
        return result

    return run_edit(name, f"noface-{action}", change)


def add_crops(
    name: str,
    person: str,
    crops: Sequence[np.ndarray],
    *,
    source: str = "webcam",
    detector: str = "",
) -> EditResult:
    """Add face crops (RGB uint8 arrays, e.g. from enrollment) to ``person`` in dataset ``name``.

    The dataset is created when it does not exist. Crops are stored as ``crop_size`` JPEGs;
    a crop whose JPEG is byte-identical to an image already in the dataset is skipped.
    """
    require_writable("Adding faces")
    cls = check_class_name(person)
    if not crops:
        raise DatasetError("There are no face crops to save.")
    for i, crop in enumerate(crops):
        if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise DatasetError(f"Crop {i + 1} is not an RGB uint8 image (H, W, 3).")

    def change(state: EditState) -> EditResult:
        size = int(state.meta.get("crop_size", CROP_SIZE))
        if not state.meta.get("detector"):
            state.meta["detector"] = detector
        known = {r.sha256 for r in state.rows if r.sha256}
        stamp = time.strftime("%Y%m%d-%H%M%S")
        added: list[str] = []
        skipped = 0
        for i, crop in enumerate(crops):
            if crop.shape[:2] != (size, size):
                crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
            data = encode_jpeg(np.ascontiguousarray(crop))
            sha = hashlib.sha256(data).hexdigest()
            if sha in known:
                skipped += 1
                continue
            known.add(sha)
            rel = PurePosixPath(cls, f"{source}-{stamp}-{i + 1:03d}_{sha[:10]}.jpg").as_posix()
            workspace.atomic_write_bytes(state.staged / rel, data)
            state.rows.append(
                ManifestRow(
                    file=rel,
                    class_name=cls,
                    split="",
                    source=f"{source}:{stamp}#{i + 1}",
                    sha256=sha,
                    status="ok",
                    detector=detector,
                    faces=1,
                )
            )
            added.append(rel)
        if not added:
            raise DatasetError(f"All {len(crops)} crops are already in {state.name!r}; nothing was added.")
        finish_edit(state)
        mine = [r for r in state.rows if r.class_name == cls and r.status in STORED]
        counts = {s: sum(r.split == s for r in mine) for s in SPLITS}
        note = f", {skipped} already there" if skipped else ""
        return EditResult(
            state.name,
            "",
            f"Added {len(added)} faces of {cls!r} to {state.name!r}{note}: {cls!r} now has {len(mine)} "
            f"(train {counts['train']}, val {counts['val']}, test {counts['test']}).",
            split_warnings(state, [cls]) + list(state.meta.get("split_messages", [])),
            added,
        )

    return run_edit(name, "add-crops", change, create=True)


def person_listing(person: str, files: Sequence[tuple[str, bytes | Callable[[], bytes]]]) -> SourceListing:
    """An import source of images of one ``person``, from ``(file name, bytes or reader)`` pairs.

    Nothing is written: pass it to :func:`facecore.data.dataset.import_dataset`. Files without an
    image extension are listed as problems.
    """
    cls = check_class_name(person)
    items: list[SourceItem] = []
    problems: list[SourceProblem] = []
    seen: set[str] = set()
    for fname, data in files:
        base = PurePosixPath(str(fname).replace("\\", "/")).name or "image"
        path = f"{cls}/{base}"
        if path.casefold() in seen:
            problems.append(SourceProblem(path, "another file has the same name; skipped.", cls))
            continue
        seen.add(path.casefold())
        if PurePosixPath(base).suffix.lower() not in IMAGE_EXTENSIONS:
            exts = ", ".join(sorted(IMAGE_EXTENSIONS))
            problems.append(SourceProblem(path, f"not an image extension; accepted: {exts}. Skipped.", cls))
            continue
        reader = data if callable(data) else (lambda b=data: b)
        items.append(SourceItem(cls, path, reader))
    if not items and not problems:
        raise DatasetError("No images were given.")
    return SourceListing(items, problems, [cls])


__all__ = [
    "NOFACE_ACTIONS",
    "add_crops",
    "check_class_name",
    "delete_class",
    "delete_image",
    "letterbox",
    "person_listing",
    "rename_class",
    "resolve_noface",
]
