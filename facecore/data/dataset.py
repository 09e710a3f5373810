"""Face datasets on disk: open, list, import and delete.

A dataset lives in ``<FACECORE_HOME>/datasets/<name>/``::

    dataset.json        name, classes, split ratios and seed, detector, counts
    manifest.csv        one row per source image (stored, no face, duplicate or error)
    report.json         the last import's report
    <class>/<file>.jpg  256x256 face crops
    _noface/<class>/    images where no face was found (kept for review, not in any split)

Every write goes to a staging folder that is swapped in whole, under a per-dataset file lock,
so a failed or killed import leaves the previous dataset exactly as it was. The rows of
``manifest.csv`` are :mod:`facecore.data.manifest`'s; what an import does inside its staging
folder (detect, crop, dedupe, split, report) is :mod:`facecore.data.importer`'s.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal

from filelock import Timeout

from facecore import workspace
from facecore.constants import CROP_MARGIN, SPLITS, UNKNOWN
from facecore.data.importer import ImportReport, NoFace, ProgressFn, build_import
from facecore.data.manifest import STORED, ManifestRow, read_manifest
from facecore.data.sources import SourceListing, ZipLimits, open_source
from facecore.data.splits import DEFAULT_RATIOS, split_counts
from facecore.detect.detection import Detector
from facecore.detect.detectors import create_detector
from facecore.errors import DatasetError, DatasetExistsError, FacecoreError, SplitError
from facecore.mode import require_writable

Mode = Literal["create", "append", "replace"]


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
        report = build_import(
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
    "UNKNOWN",
    "import_dataset",
    "import_zip_bytes",
    "list_datasets",
    "load_dataset",
    "delete_dataset",
    "FacecoreError",
]
