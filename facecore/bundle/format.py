"""The bundle format both directions share: its file names and limits, what a run leaves out,
the :class:`BundleReport`, and the walk over a folder's files."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facecore.data.sources import ZipLimits

MANIFEST = "facecore-bundle.json"
FORMAT = "facecore.bundle/1"
#: what the workspace remembers of the last bundle unpacked into it
MARKER = ".facecore-bundle.json"
KINDS = ("datasets", "models", "galleries")
#: run files never packed: the optimizer state, and caches rebuilt on demand
RUN_SKIP = ("last.pt",)
RUN_SKIP_PREFIX = ("embeddings_train",)
#: limits for unpacking: a checkpoint may be up to 1 GB (the limit of `runs add`)
LIMITS = ZipLimits(max_entries=50_000, max_total_bytes=8 * 1024**3, max_entry_bytes=1024**3)
MAX_MANIFEST_BYTES = 64 * 1024**2
#: entries stored as they are (already compressed, or not worth compressing)
STORED_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".pt", ".npz", ".onnx")


@dataclass
class BundleReport:
    """What was packed (or unpacked): items by kind, files, bytes, seconds."""

    path: str
    datasets: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    galleries: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    #: unpack only: items put in place, items already there with the same files, notes
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self, verb: str) -> str:
        lines = [
            f"{verb} {self.path}: {len(self.datasets)} dataset(s) {', '.join(self.datasets) or '-'}; "
            f"{len(self.runs)} run(s) {', '.join(self.runs) or '-'}; "
            f"{len(self.galleries)} galler{'y' if len(self.galleries) == 1 else 'ies'} "
            f"{', '.join(self.galleries) or '-'}",
            f"{self.files} files, {_size(self.bytes)}, {self.seconds:.2f} s",
        ]
        if self.written or self.unchanged:
            lines.append(f"written: {', '.join(self.written) or 'nothing'}; "
                         f"already there: {', '.join(self.unchanged) or 'nothing'}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.1f} KB"


def tree_files(folder: Path, skip: Iterable[str] = (), skip_prefix: tuple[str, ...] = ()) -> list[Path]:
    """The plain files under ``folder``, sorted; hidden names, locks, temporary files and links left out."""
    skip = set(skip)
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).parts
        if any(p.startswith(".") for p in rel) or path.is_symlink() or not path.is_file():
            continue
        if path.name in skip or path.name.startswith(skip_prefix) or path.suffix in (".tmp", ".lock"):
            continue
        out.append(path)
    return out
