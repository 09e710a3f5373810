"""Editing a dataset in place: rename or delete a person, delete an image, settle the images where
no face was found, and add enrollment crops.

Every edit runs under the dataset's lock and builds the edited dataset in a staging folder
(hard links to the unchanged images, so it is cheap) that is swapped in whole, like an import:
a failed or interrupted edit leaves the dataset exactly as it was. Files in the staging folder
are hard links shared with the live dataset, so they are never written in place: new files are
written beside them and renamed over (:func:`facecore.workspace.atomic_write_bytes`).

Splits: no edit moves an image that has a split to another split. Images that gain a place in
the dataset (a resolved no-face image, enrollment crops) get one from
:func:`facecore.data.splits.assign_splits` with every existing assignment kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import cv2
import numpy as np

from facecore import workspace
from facecore.constants import CROP_MARGIN, SPLITS
from facecore.data.dataset import (
    CROP_SIZE,
    NOFACE_DIR,
    STORED,
    UNKNOWN,
    ManifestRow,
    read_manifest,
    write_manifest,
)
from facecore.data.images import IMAGE_EXTENSIONS, encode_jpeg, load_rgb
from facecore.data.sources import SourceItem, SourceListing, SourceProblem
from facecore.data.splits import DEFAULT_RATIOS, assign_splits
from facecore.detect.crop import centre_crop
from facecore.errors import DatasetError, ImageError
from facecore.mode import require_writable

NoFaceAction = Literal["keep", "centre_crop", "delete"]
NOFACE_ACTIONS = ("keep", "centre_crop", "delete")


@dataclass
class EditResult:
    """What an edit did: a one-line ``message``, ``warnings`` to show, and the files touched."""

    dataset: str
    action: str
    message: str
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"warning: {w}" for w in self.warnings)])


@dataclass
class _State:
    """The dataset being edited, in its staging folder."""

    name: str
    staged: Path
    meta: dict
    rows: list[ManifestRow]


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


def _class_names(rows: Iterable[ManifestRow]) -> list[str]:
    return sorted({r.class_name for r in rows if r.class_name and r.file})


def _require_class(state: _State, cls: str) -> None:
    if cls not in _class_names(state.rows):
        have = ", ".join(_class_names(state.rows)) or "none"
        raise DatasetError(f"Dataset {state.name!r} has no person {cls!r} (people: {have}).")


# --- the edit transaction ------------------------------------------------------------------------


def _new_meta(name: str) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "name": name,
        "classes": [],
        "unknown_class": None,
        "seed": 0,
        "ratios": list(DEFAULT_RATIOS),
        "detector": "",
        "margin": CROP_MARGIN,
        "crop_size": CROP_SIZE,
        "created": now,
        "updated": now,
        "images": 0,
        "split_messages": [],
    }


def _edit(
    name: str, action: str, change: Callable[[_State], EditResult], *, create: bool = False
) -> EditResult:
    """Run ``change`` on a staged copy of dataset ``name`` and swap the result in."""
    require_writable("Editing a dataset")
    final = workspace.dataset_path(name)
    with workspace.staged_folder(final, lock_what="dataset name") as staged:
        exists = (final / "dataset.json").is_file()
        if not exists and not create:
            raise DatasetError(f"No dataset named {name!r}.")
        if exists:
            try:
                meta = json.loads((final / "dataset.json").read_text("utf-8"))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{final / 'dataset.json'} is damaged ({exc}).") from exc
            rows = read_manifest(final / "manifest.csv")
            workspace.link_tree(final, staged, exclude=("dataset.json", "manifest.csv"))
        else:
            meta, rows = _new_meta(final.name), []
        state = _State(final.name, staged, meta, rows)
        result = change(state)
        _finish(state)
        _prune_empty_dirs(staged)
    result.action = action
    return result


def _finish(state: _State) -> None:
    """Give new images a split (existing ones kept) and write manifest.csv and dataset.json."""
    meta = state.meta
    stored = [r for r in state.rows if r.status in STORED]
    labels = {r.sha256: r.class_name for r in stored}
    existing = {r.sha256: r.split for r in stored if r.split}
    splits, messages = assign_splits(
        labels, existing, ratios=meta.get("ratios", DEFAULT_RATIOS), seed=meta.get("seed", 0)
    )
    for r in stored:
        r.split = splits.get(r.sha256, "")
    classes = sorted({r.class_name for r in stored})
    meta.update(
        classes=classes,
        unknown_class=UNKNOWN if UNKNOWN in classes else None,
        images=len(stored),
        split_messages=messages,
        updated=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    write_manifest(state.staged / "manifest.csv", state.rows)
    workspace.atomic_write_text(state.staged / "dataset.json", json.dumps(meta, indent=2, ensure_ascii=False))


def _prune_empty_dirs(root: Path) -> None:
    for path in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(path.iterdir()):
            path.rmdir()


def _split_warnings(state: _State, classes: Iterable[str]) -> list[str]:
    """Warnings for ``classes`` left without images in a split, or with fewer than two classes."""
    out = []
    stored = [r for r in state.rows if r.status in STORED]
    for cls in sorted(set(classes)):
        mine = [r for r in stored if r.class_name == cls]
        if not mine:
            continue
        missing = [s for s in SPLITS if not any(r.split == s for r in mine)]
        if "train" in missing or "test" in missing:
            out.append(
                f"{cls!r} has no {' or '.join(missing)} images now; training refuses the dataset "
                "until every person has train and test images (add more images of them)."
            )
        elif missing:
            out.append(f"{cls!r} has no validation images now; add more images of them.")
    n = len({r.class_name for r in stored})
    if n == 0:
        out.append(f"Dataset {state.name!r} has no images left; add people before training.")
    elif n == 1:
        out.append(
            "The dataset has one person: a classifier needs at least two (add another person, or "
            "an Unknown class of other people's faces)."
        )
    return out


def _find_row(state: _State, file: str) -> ManifestRow:
    """The manifest row of ``file`` (its path in the dataset, or a unique file name)."""
    want = PurePosixPath(file.replace("\\", "/")).as_posix().lstrip("/")
    with_files = [r for r in state.rows if r.file]
    for r in with_files:
        if r.file == want:
            return r
    by_name = [r for r in with_files if PurePosixPath(r.file).name == PurePosixPath(want).name]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise DatasetError(
            f"{file!r} matches {len(by_name)} images in {state.name!r}; give its full path "
            f"({', '.join(r.file for r in by_name[:3])})."
        )
    raise DatasetError(f"Dataset {state.name!r} has no image {file!r}.")


def _remove_file(state: _State, rel: str) -> None:
    path = state.staged / rel
    if path.is_file():
        path.unlink()


# --- the edits ---------------------------------------------------------------------------------


def rename_class(name: str, old: str, new: str) -> EditResult:
    """Rename person ``old`` to ``new`` (folders, manifest, dataset.json); splits are unchanged."""
    target = check_class_name(new)

    def change(state: _State) -> EditResult:
        _require_class(state, old)
        if target == old:
            raise DatasetError(f"The person is already called {old!r}.")
        clash = [c for c in _class_names(state.rows) if c.casefold() == target.casefold() and c != old]
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

    return _edit(name, "rename", change)


def delete_class(name: str, cls: str) -> EditResult:
    """Delete person ``cls``: its images, its no-face images and its manifest rows."""

    def change(state: _State) -> EditResult:
        _require_class(state, cls)
        gone = [r for r in state.rows if r.class_name == cls]
        state.rows = [r for r in state.rows if r.class_name != cls]
        for parent in (state.staged, state.staged / NOFACE_DIR):
            shutil.rmtree(parent / cls, ignore_errors=True)
        n = sum(r.status in STORED for r in gone)
        return EditResult(
            state.name,
            "",
            f"Deleted {cls!r} ({n} images) from {state.name!r}.",
            _split_warnings(state, []),
            [r.file for r in gone if r.file],
        )

    return _edit(name, "delete-class", change)


def delete_image(name: str, file: str) -> EditResult:
    """Delete one image (a stored face or a no-face image) and its manifest row."""

    def change(state: _State) -> EditResult:
        row = _find_row(state, file)
        _remove_file(state, row.file)
        state.rows.remove(row)
        return EditResult(
            state.name,
            "",
            f"Deleted {row.file} ({row.class_name}, {row.split or row.status}) from {state.name!r}.",
            _split_warnings(state, [row.class_name]),
            [row.file],
        )

    return _edit(name, "delete-image", change)


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

    def change(state: _State) -> EditResult:
        row = _find_row(state, file)
        if row.status != "no_face":
            raise DatasetError(f"{row.file} is not an image where no face was found (it is {row.status}).")
        old = row.file
        if action == "delete":
            _remove_file(state, old)
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
        _remove_file(state, old)
        row.file, row.detector = rel, "manual"
        if action == "keep":
            row.status, row.message = "ok", "no face found; kept whole (padded and resized) by hand"
        else:
            row.status, row.message = "centre_crop", "no face found; centre crop kept by hand"
        result = EditResult(state.name, "", "", [], [old, rel])
        _finish(state)  # gives the row its split, so the message can name it
        result.message = f"Kept {rel} in {row.class_name!r} ({row.split or 'no split yet'})."
        result.warnings = _split_warnings(state, [])
        return result

    return _edit(name, f"noface-{action}", change)


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

    def change(state: _State) -> EditResult:
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
        _finish(state)
        mine = [r for r in state.rows if r.class_name == cls and r.status in STORED]
        counts = {s: sum(r.split == s for r in mine) for s in SPLITS}
        note = f", {skipped} already there" if skipped else ""
        return EditResult(
            state.name,
            "",
            f"Added {len(added)} faces of {cls!r} to {state.name!r}{note}: {cls!r} now has {len(mine)} "
            f"(train {counts['train']}, val {counts['val']}, test {counts['test']}).",
            _split_warnings(state, [cls]) + list(state.meta.get("split_messages", [])),
            added,
        )

    return _edit(name, "add-crops", change, create=True)


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
    "EditResult",
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
