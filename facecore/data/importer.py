"""Building an imported dataset in its staging folder: detect, crop, dedupe, split, and report.

:func:`build_import` turns a :class:`~facecore.data.sources.SourceListing` into face crops,
``manifest.csv`` and ``dataset.json`` inside the staging folder that
:func:`facecore.data.dataset.import_dataset` swaps in, and returns the :class:`ImportReport`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from facecore import workspace
from facecore.constants import CROP_SIZE, UNKNOWN
from facecore.data.images import encode_jpeg, load_rgb
from facecore.data.manifest import NOFACE_DIR, STORED, ManifestRow, read_manifest, write_manifest
from facecore.data.sources import SourceItem, SourceListing, SourceProblem
from facecore.data.splits import assign_splits, split_counts
from facecore.detect.crop import centre_crop, crop_face
from facecore.detect.detection import Detector
from facecore.errors import ArchiveEntryError, DatasetError, ImageError

NOFACE_MAX_SIDE = 512
NoFace = Literal["report", "centre_crop"]
ProgressFn = Callable[[int, int, str], None]


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


def _copy_existing(final: Path, staged: Path) -> list[ManifestRow]:
    """Hard-link (or copy) the existing dataset into the staging folder; return its rows."""
    workspace.link_tree(final, staged, exclude=("dataset.json", "manifest.csv", "report.json"))
    return read_manifest(final / "manifest.csv")


def build_import(
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
    """Import ``listing`` into the staging folder ``staged`` (which starts as a copy of ``final``
    when ``mode`` is ``append``, whose split seed and ratios are then kept): face crops,
    ``manifest.csv`` and ``dataset.json``. Returns the report."""
    rows: list[ManifestRow] = _copy_existing(final, staged) if mode == "append" else []
    old_meta = json.loads((final / "dataset.json").read_text("utf-8")) if mode == "append" else {}
    if mode == "append":
        seed = old_meta.get("seed", seed)
        ratios = old_meta.get("ratios", ratios)
    report = ImportReport(dataset=name, mode=mode, detector=det.name)
    tally: dict[str, Counter] = {}
    sha_owner = {r.sha256: r.source for r in rows if r.sha256}
    for problem in listing.problems:
        _record_problem(report, rows, problem, tally)
    folder_classes = _folder_classes(listing, report)
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
        _count_row(report, tally, item.path, row)
    if progress:
        progress(total, total, "splitting")
    stored, split_msgs = _split(rows, report, tally, folder_classes, seed=seed, ratios=ratios)
    classes = sorted({r.class_name for r in stored})
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


def _folder_classes(listing: SourceListing, report: ImportReport) -> dict[str, str]:
    """The class each class folder of ``listing`` stands for (:func:`class_name_for`); a folder
    renamed is a warning, one that cannot be a class a problem (and left out)."""
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
    return folder_classes


def _count_row(report: ImportReport, tally: dict[str, Counter], path: str, row: ManifestRow) -> None:
    """Count what became of one imported image, per class and in the report's lists."""
    counts = tally.setdefault(row.class_name, Counter())
    counts[row.status] += 1
    if row.status == "ok":
        counts["faces_found"] += 1
    if row.status in STORED:
        counts["stored"] += 1
    if row.status == "no_face":
        report.no_face.append(path)
    elif row.status == "duplicate":
        report.duplicates.append({"path": path, "same_as": row.message.removeprefix("same as ")})
    elif row.status == "error":
        report.problems.append({"path": path, "message": row.message})


def _split(
    rows: list[ManifestRow],
    report: ImportReport,
    tally: dict[str, Counter],
    folder_classes: dict[str, str],
    *,
    seed: int,
    ratios: Sequence[float],
) -> tuple[list[ManifestRow], list[str]]:
    """Give the stored rows a split (existing ones kept) and fill in the report's split, classes
    and warnings: ``(stored rows, split messages)``. Nothing stored is a :class:`DatasetError`."""
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
    return stored, split_msgs


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
