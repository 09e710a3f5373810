"""A dataset's ``manifest.csv``: one :class:`ManifestRow` per source image (stored, no face,
duplicate or error), read and written whole, and the names of the dataset's folders."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from facecore import workspace
from facecore.constants import SPLITS

#: the folder of the images where no face was found (kept for review, not in any split)
NOFACE_DIR = "_noface"

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


def count_splits(rows: Iterable[ManifestRow]) -> dict[str, int]:
    """How many of ``rows`` are in each split (train, val, test)."""
    rows = list(rows)
    return {s: sum(r.split == s for r in rows) for s in SPLITS}
