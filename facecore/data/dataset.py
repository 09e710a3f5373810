"""Face datasets on disk: import (detect, crop, dedupe, split), load, and report.

A dataset lives in ``<FACECORE_HOME>/datasets/<name>/``::

    dataset.json        name, classes, split ratios and seed, detector, counts
    manifest.csv        one row per source image (stored, no face, duplicate or error)
    report.json         the last import's report
    <class>/<file>.jpg  256x256 face crops
    _noface/<class>/    images where no face was found (kept for review, not in any split)

Every write goes to a staging folder that is swapped in whole, under a per-dataset file lock,
so a failed or killed import leaves the previous dataset exactly as it was.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
from filelock import Timeout

from facecore import workspace
from facecore.constants import CROP_MARGIN, CROP_SIZE, SPLITS, UNKNOWN
from facecore.data.images import encode_jpeg, load_rgb
from facecore.data.sources import SourceItem, SourceListing, SourceProblem, ZipLimits, open_source
from facecore.data.splits import DEFAULT_RATIOS, assign_splits, split_counts
from facecore.detect.crop import centre_crop, crop_face
from facecore.detect.detection import Detector
from facecore.detect.detectors import create_detector
from facecore.errors import (
    ArchiveEntryError,
    DatasetError,
    DatasetExistsError,
    FacecoreError,
    ImageError,
    SplitError,
)
from facecore.mode import require_writable

NOFACE_DIR = "_noface"
NOFACE_MAX_SIDE = 512
Mode = Literal["create", "append", "replace"]
NoFace = Literal["report", "centre_crop"]
ProgressFn = Callable[[int, int, str], None]

#: Row statuses: images in the dataset are ``ok`` or ``centre_crop`` (or ``augmented``).
STORED = frozenset({"ok", "centre_crop", "augmented"})


@dataclass
class ManifestRow:
    """One source image and what became of it."""

    file: str
    class_name: str
    split: str
    source: str
    sha256: str
    status: str
    detector: str = ""
    box: str = ""
    score: str = ""
    angle: str = ""
    faces: int = 0
    message: str = ""

    @classmethod
    def from_csv(cls, row: dict[str, str]) -> ManifestRow:
        kwargs = {f.name: row.get(f.name, "") for f in fields(cls)}
        kwargs["faces"] = int(kwargs["faces"] or 0)
        return cls(**kwargs)


MANIFEST_FIELDS = [f.name for f in fields(ManifestRow)]


def class_name_for(folder: str) -> str:
    """The class a folder name stands for: ``unknown`` in any case is :data:`UNKNOWN`."""
    name = workspace.safe_name(folder, what="class folder name")
    if name.casefold() == UNKNOWN.casefold():
        return UNKNOWN
    if name == NOFACE_DIR:
        return f"{name}_"
    return name


@dataclass
class ImportReport:
    """What an import did, per class and per file. ``str(report)`` is the human summary."""

    dataset: str
    mode: str
    detector: str
    classes: dict[str, dict[str, int]] = field(default_factory=dict)
    split: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, key: str) -> int:
        return sum(c.get(key, 0) for c in self.classes.values())

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lines = [
            f"Dataset {self.dataset!r} ({self.mode}, detector {self.detector}, {self.seconds:.1f} s)",
            f"{'class':<28}{'stored':>8}{'no face':>9}{'dupes':>7}{'errors':>8}"
            f"{'train':>7}{'val':>5}{'test':>6}",
        ]
        for cls, c in self.classes.items():
            s = self.split.get(cls, {})
            lines.append(
                f"{cls[:27]:<28}{c.get('stored', 0):>8}{c.get('no_face', 0):>9}"
                f"{c.get('duplicate', 0):>7}{c.get('error', 0):>8}"
                f"{s.get('train', 0):>7}{s.get('val', 0):>5}{s.get('test', 0):>6}"
            )
        lines.append(
            f"faces found: {self.count('faces_found')}, not found: {self.count('no_face')}, "
            f"centre-cropped: {self.count('centre_crop')}, duplicates: {len(self.duplicates)}, "
            f"errors: {len(self.problems)}"
        )
        for path in self.no_face:
            lines.append(f"  no face: {path}")
        for d in self.duplicates:
            lines.append(f"  duplicate: {d['path']} (same as {d['same_as']})")
        for p in self.problems:
            lines.append(f"  problem: {p['path']}: {p['message']}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)


class FaceDataset:
    """A dataset on disk, read-only: classes, manifest rows, and the images of each split."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        meta_file = self.path / "dataset.json"
        if not meta_file.is_file():
            raise DatasetError(f"{self.path} is not a facecore dataset (no dataset.json).")
        try:
            self.meta: dict = json.loads(meta_file.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{meta_file} is damaged ({exc}).") from exc
        self.rows = read_manifest(self.path / "manifest.csv")

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def classes(self) -> list[str]:
        """Class names in label order (sorted, as the models index them)."""
        return list(self.meta["classes"])

    @property
    def stored(self) -> list[ManifestRow]:
        return [r for r in self.rows if r.status in STORED]

    def split_messages(self) -> list[str]:
        return list(self.meta.get("split_messages", []))

    def items(self, split: str) -> list[tuple[Path, int]]:
        """``(image path, class index)`` for one split, sorted by file name."""
        if split not in SPLITS:
            raise DatasetError(f"Unknown split {split!r}; choose from {', '.join(SPLITS)}.")
        index = {c: i for i, c in enumerate(self.classes)}
        return [
            (self.path / r.file, index[r.class_name])
            for r in sorted(self.stored, key=lambda r: r.file)
            if r.split == split
        ]

    def check_trainable(self) -> None:
        """Raise :class:`SplitError` unless every split is non-empty and there are >= 2 classes."""
        if len(self.classes) < 2:
            raise SplitError(
                f"Dataset {self.name!r} has {len(self.classes)} class; a classifier needs at least "
                "two (add another person, or an Unknown class of other people's faces)."
            )
        msgs = " ".join(self.split_messages())
        short = [c for c, n in self.counts().items() if n["train"] == 0 or n["test"] == 0]
        if short:
            raise SplitError(
                f"Dataset {self.name!r}: class {', '.join(map(repr, short))} has no train or test "
                f"images. {msgs}".strip()
            )
        for split in SPLITS:
            if not self.items(split):
                raise SplitError(f"Dataset {self.name!r} has no {split} images. {msgs}".strip())

    def counts(self) -> dict[str, dict[str, int]]:
        """Per class: images in train/val/test/unsplit."""
        stored = self.stored
        return split_counts({r.sha256: r.class_name for r in stored}, {r.sha256: r.split for r in stored})

    @property
    def no_face(self) -> list[ManifestRow]:
        """The images where no face was found (kept for review, in no split), by file name."""
        return sorted((r for r in self.rows if r.status == "no_face"), key=lambda r: r.file)

    def faces_of(self, person: str) -> list[ManifestRow]:
        """The stored face crops of class ``person``, by file name."""
        return sorted((r for r in self.stored if r.class_name == person), key=lambda r: r.file)

    def class_table(self) -> list[dict[str, int | str]]:
        """One row per class: ``person``, its faces in each split and ``unsplit``, ``total``, and
        ``no face`` (its images where no face was found)."""
        counts = self.counts()
        noface = Counter(r.class_name for r in self.rows if r.status == "no_face")
        return [
            {"person": c, **n, "total": sum(n.values()), "no face": noface[c]} for c, n in counts.items()
        ]

    def image_path(self, row: ManifestRow) -> Path:
        """The image file of a manifest row."""
        return self.path / row.file

    def summary(self) -> dict:
        stored = self.stored
        return {
            "name": self.name,
            "path": str(self.path),
            "classes": self.classes,
            "images": len(stored),
            "no_face": sum(r.status == "no_face" for r in self.rows),
            "split": {s: sum(r.split == s for r in stored) for s in SPLITS},
            "per_class": self.counts(),
            "detector": self.meta.get("detector"),
            "seed": self.meta.get("seed"),
            "ratios": self.meta.get("ratios"),
        }


def read_manifest(path: Path) -> list[ManifestRow]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return [ManifestRow.from_csv(r) for r in csv.DictReader(fh)]


def write_manifest(path: Path, rows: Iterable[ManifestRow]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(asdict(r))
    workspace.atomic_write_text(path, buf.getvalue())


def list_datasets() -> list[str]:
    root = workspace.datasets_dir()
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if (p / "dataset.json").is_file() and not p.name.startswith(".")
    )


def _recover_if_idle(final: Path) -> None:
    """Put back a dataset an interrupted writer left renamed aside, unless a writer is at work now
    (its staging folder is not litter: only a writer holding the lock may tidy up)."""
    try:
        with workspace.dataset_lock(final.name, timeout=0):
            workspace.recover(final)
    except Timeout:
        pass


def load_dataset(name_or_path: str | Path) -> FaceDataset:
    """Open a dataset by name (under ``FACECORE_HOME``) or by folder path."""
    path = Path(name_or_path)
    if not (path / "dataset.json").is_file():
        candidate = workspace.dataset_path(str(name_or_path))
        if not (candidate / "dataset.json").is_file():
            _recover_if_idle(candidate)
        if not (candidate / "dataset.json").is_file():
            have = ", ".join(list_datasets()) or "none yet"
            raise DatasetError(f"No dataset named {str(name_or_path)!r} (datasets: {have}).")
        path = candidate
    return FaceDataset(path)


def _file_stem(path: str, sha: str) -> str:
    stem = Path(path).stem
    try:
        stem = workspace.safe_name(stem)
    except DatasetError:
        stem = "image"
    return f"{stem[:60]}_{sha[:10]}"


def _noface_preview(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    scale = NOFACE_MAX_SIDE / max(h, w)
    if scale >= 1:
        return image
    import cv2

    return cv2.resize(
        image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )


def import_dataset(
    src: str | Path | SourceListing,
    name: str,
    *,
    mode: Mode = "create",
    detector: str | Detector = "auto",
    no_face: NoFace = "report",
    margin: float = CROP_MARGIN,
    seed: int = 0,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    limits: ZipLimits | None = None,
    progress: ProgressFn | None = None,
    source_label: str | None = None,
) -> ImportReport:
    """Import a folder or zip (one subfolder per class) as dataset ``name``.

    ``mode``: ``create`` refuses an existing dataset, ``append`` adds to it (its split is
    kept), ``replace`` swaps it for the new one. Nothing under ``datasets/name`` changes until
    the whole import has succeeded.
    """
    require_writable("Importing faces")
    if mode not in ("create", "append", "replace"):
        raise DatasetError(f"Unknown import mode {mode!r}; use create, append or replace.")
    t0 = time.perf_counter()
    final = workspace.dataset_path(name)
    listing = src if isinstance(src, SourceListing) else open_source(src, limits=limits)
    det = create_detector(detector) if isinstance(detector, str) else detector
    with workspace.staged_folder(final, lock_what="dataset name") as staged:
        exists = (final / "dataset.json").is_file()
        if exists and mode == "create":
            raise DatasetExistsError(
                f"A dataset named {final.name!r} already exists; choose another name, or append "
                "to it or replace it (--append / --replace)."
            )
        report = _build(
            listing,
            staged,
            final,
            det,
            name=final.name,
            mode=mode if exists else "create",
            no_face=no_face,
            margin=margin,
            seed=seed,
            ratios=ratios,
            progress=progress,
            source_label=source_label or (str(src) if not isinstance(src, SourceListing) else ""),
        )
        report.seconds = round(time.perf_counter() - t0, 2)
        workspace.atomic_write_text(staged / "report.json", json.dumps(report.to_dict(), indent=2))
    return report


def import_zip_bytes(
    data: bytes | BinaryIO, name: str, *, label: str = "upload.zip", **options: Any
) -> ImportReport:
    """Import a zip held in memory (an upload) as :func:`import_dataset` imports a zip file.

    ``data``: the archive's bytes, or a binary file object; ``label`` names it in the report.
    The archive is written to a private temporary folder for ``zipfile`` and removed afterwards.
    ``options``: the keyword arguments of :func:`import_dataset`.
    """
    with tempfile.TemporaryDirectory(prefix="facecore-upload-") as tmp:
        path = Path(tmp) / "upload.zip"
        with path.open("wb") as fh:
            if isinstance(data, (bytes, bytearray, memoryview)):
                fh.write(data)
            else:
                shutil.copyfileobj(data, fh)
        return import_dataset(path, name, source_label=label, **options)


def count_splits(rows: Iterable[ManifestRow]) -> dict[str, int]:
    """How many of ``rows`` are in each split (train, val, test)."""
    rows = list(rows)
    return {s: sum(r.split == s for r in rows) for s in SPLITS}


def _copy_existing(final: Path, staged: Path) -> list[ManifestRow]:
    """Hard-link (or copy) the existing dataset into the staging folder; return its rows."""
    workspace.link_tree(final, staged, exclude=("dataset.json", "manifest.csv", "report.json"))
    return read_manifest(final / "manifest.csv")


def _build(
    listing: SourceListing,
    staged: Path,
    final: Path,
    det: Detector,
    *,
    name: str,
    mode: str,
    no_face: NoFace,
    margin: float,
    seed: int,
    ratios: Sequence[float],
    progress: ProgressFn | None,
    source_label: str,
) -> ImportReport:
    rows: list[ManifestRow] = _copy_existing(final, staged) if mode == "append" else []
    old_meta = json.loads((final / "dataset.json").read_text("utf-8")) if mode == "append" else {}
    if mode == "append":
        seed = old_meta.get("seed", seed)
        ratios = old_meta.get("ratios", ratios)
    report = ImportReport(dataset=name, mode=mode, detector=det.name)
    tally: dict[str, Counter] = {}
    sha_owner = {r.sha256: r.source for r in rows if r.sha256}

    def bump(cls: str, key: str) -> None:
        tally.setdefault(cls, Counter())[key] += 1

    for problem in listing.problems:
        _record_problem(report, rows, problem, tally)
    folder_classes: dict[str, str] = {}
    for folder in sorted({*listing.class_folders, *(it.class_name for it in listing.items)}):
        try:
            folder_classes[folder] = cls = class_name_for(folder)
        except DatasetError as exc:
            report.problems.append({"path": folder, "message": str(exc)})
            continue
        if cls != folder and cls != UNKNOWN:
            report.warnings.append(
                f"Class folder {folder!r} was renamed to {cls!r} to be a valid folder name on every system."
            )
    total = len(listing.items)
    for i, item in enumerate(listing.items):
        if progress:
            progress(i, total, item.path)
        cls = folder_classes.get(item.class_name)
        if cls is None:
            continue
        source = f"{source_label}::{item.path}" if source_label else item.path
        row = _import_one(item, cls, source, staged, det, no_face, margin, sha_owner)
        rows.append(row)
        bump(cls, row.status)
        if row.status == "ok":
            bump(cls, "faces_found")
        if row.status in STORED:
            bump(cls, "stored")
        if row.status == "no_face":
            report.no_face.append(item.path)
        elif row.status == "duplicate":
            report.duplicates.append({"path": item.path, "same_as": row.message.removeprefix("same as ")})
        elif row.status == "error":
            report.problems.append({"path": item.path, "message": row.message})
    if progress:
        progress(total, total, "splitting")
    with_images = {r.class_name for r in rows if r.status in STORED}
    for folder, cls in folder_classes.items():
        if cls not in with_images:
            report.warnings.append(f"Class folder {folder!r} holds no usable images; it was skipped.")
    stored = [r for r in rows if r.status in STORED]
    if not stored:
        found = "; ".join(f"{p['path']}: {p['message']}" for p in report.problems[:5])
        raise DatasetError(f"No usable face images in the source, so no dataset was written. {found}".strip())
    labels = {r.sha256: r.class_name for r in stored}
    existing = {r.sha256: r.split for r in stored if r.split}
    splits, split_msgs = assign_splits(labels, existing, ratios=ratios, seed=seed)
    for r in stored:
        r.split = splits.get(r.sha256, "")
    classes = sorted({r.class_name for r in stored})
    if len(classes) < 2:
        report.warnings.append(
            f"Only one class ({classes[0]!r}): a classifier needs at least two. Add another "
            "person, or an Unknown class of other people's faces, before training."
        )
    report.warnings.extend(split_msgs)
    report.split = split_counts(labels, splits)
    report.classes = {c: dict(tally.get(c, Counter())) for c in sorted(tally)}
    write_manifest(staged / "manifest.csv", rows)
    meta = {
        "name": name,
        "classes": classes,
        "unknown_class": UNKNOWN if UNKNOWN in classes else None,
        "seed": seed,
        "ratios": list(ratios),
        "detector": det.name,
        "margin": margin,
        "crop_size": CROP_SIZE,
        "created": old_meta.get("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "images": len(stored),
        "split_messages": split_msgs,
    }
    workspace.atomic_write_text(staged / "dataset.json", json.dumps(meta, indent=2, ensure_ascii=False))
    return report


def _record_problem(
    report: ImportReport, rows: list[ManifestRow], problem: SourceProblem, tally: dict[str, Counter]
) -> None:
    if problem.message.startswith("note:"):
        report.warnings.append(f"{problem.path}: {problem.message.removeprefix('note: ')}")
        return
    report.problems.append({"path": problem.path, "message": problem.message})
    rows.append(
        ManifestRow(
            file="",
            class_name=problem.class_name,
            split="",
            source=problem.path,
            sha256="",
            status="error",
            message=problem.message,
        )
    )
    if problem.class_name:
        tally.setdefault(problem.class_name, Counter())["error"] += 1


def _import_one(
    item: SourceItem,
    cls: str,
    source: str,
    staged: Path,
    det: Detector,
    no_face: NoFace,
    margin: float,
    sha_owner: dict[str, str],
) -> ManifestRow:
    row = ManifestRow(file="", class_name=cls, split="", source=source, sha256="", status="error")
    try:
        data = item.read()
        row.sha256 = hashlib.sha256(data).hexdigest()
        if row.sha256 in sha_owner:
            row.status, row.message = "duplicate", f"same as {sha_owner[row.sha256]}"
            return row
        image = load_rgb(data, name=item.path)
    except (ImageError, ArchiveEntryError) as exc:
        row.message = str(exc)
        return row
    sha_owner[row.sha256] = source
    dets = det.detect(image)
    row.detector, row.faces = det.name, len(dets)
    stem = _file_stem(item.path, row.sha256)
    if dets:
        best = dets[0]
        crop = crop_face(image, best, margin=margin, size=CROP_SIZE)
        row.status = "ok"
        row.box = " ".join(str(v) for v in best.box)
        row.score, row.angle = f"{best.score:.4f}", f"{best.angle:g}"
        if len(dets) > 1:
            row.message = f"{len(dets)} faces found; kept the largest"
    elif no_face == "centre_crop":
        crop = centre_crop(image, size=CROP_SIZE)
        row.status, row.message = "centre_crop", "no face found; kept a centre crop"
    else:
        rel = Path(NOFACE_DIR) / cls / f"{stem}.jpg"
        (staged / rel).parent.mkdir(parents=True, exist_ok=True)
        (staged / rel).write_bytes(encode_jpeg(_noface_preview(image), quality=90))
        row.status, row.file, row.message = "no_face", rel.as_posix(), "no face found"
        return row
    rel = Path(cls) / f"{stem}.jpg"
    (staged / rel).parent.mkdir(parents=True, exist_ok=True)
    (staged / rel).write_bytes(encode_jpeg(crop))
    row.file = rel.as_posix()
    return row


def delete_dataset(name: str) -> None:
    """Remove a dataset (under its lock)."""
    require_writable("Deleting a dataset")
    final = workspace.dataset_path(name)
    with workspace.dataset_lock(final.name):
        if not final.exists():
            raise DatasetError(f"No dataset named {name!r}.")
        trash = final.parent / f".trash-{final.name}-{os.getpid()}"
        os.rename(final, trash)
        shutil.rmtree(trash, ignore_errors=True)


__all__ = [
    "FaceDataset",
    "ImportReport",
    "ManifestRow",
    "UNKNOWN",
    "count_splits",
    "import_dataset",
    "import_zip_bytes",
    "list_datasets",
    "load_dataset",
    "delete_dataset",
    "FacecoreError",
]
