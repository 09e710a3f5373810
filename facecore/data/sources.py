"""Reading an import source (a folder or a zip) as class-labelled image entries, safely.

A source yields :class:`SourceItem` (an image file to import, with its class) and
:class:`SourceProblem` (an entry refused, with the reason). Nothing is extracted to disk: zip
entries are read into memory one at a time under byte limits, so an archive can neither write
outside the dataset nor fill the disk, whatever its headers claim.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from facecore.data.images import IMAGE_EXTENSIONS, MAX_FILE_BYTES
from facecore.errors import ArchiveEntryError, DatasetError, UnsafeArchiveError

IGNORED_NAMES = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class ZipLimits:
    """Limits on a zip upload; headers are checked first, then the bytes actually read."""

    max_entries: int = 20_000
    max_total_bytes: int = 2 * 1024**3
    max_entry_bytes: int = MAX_FILE_BYTES
    max_ratio: float = 200.0


@dataclass(frozen=True)
class SourceItem:
    """One image to import: its class folder name, its path inside the source, its bytes."""

    class_name: str
    path: str
    read: Callable[[], bytes]


@dataclass(frozen=True)
class SourceProblem:
    """One entry that was refused, with the reason (shown in the import report)."""

    path: str
    message: str
    class_name: str = ""


@dataclass
class SourceListing:
    """What a source holds: the images, the refused entries, and every class folder seen."""

    items: list[SourceItem]
    problems: list[SourceProblem]
    class_folders: list[str]


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p in IGNORED_NAMES or p.startswith(".") for p in parts)


def open_source(src: str | Path, *, limits: ZipLimits | None = None, loose: bool = False) -> SourceListing:
    """List ``src``: a folder with one subfolder per class, or a ``.zip`` laid out the same way.

    ``loose``: images directly in the folder (or at the zip's top) are taken too, with the class
    ``""`` (for sources where the class does not matter, such as photos of strangers); otherwise
    they are refused as not inside a class folder.
    """
    path = Path(src)
    if path.is_dir():
        return list_folder(path, loose=loose)
    if not path.exists():
        raise DatasetError(f"{src}: no such file or folder.")
    if not zipfile.is_zipfile(path):
        raise UnsafeArchiveError(f"{src}: not a folder and not a zip archive.")
    return list_zip(path, limits=limits or ZipLimits(), loose=loose)


def list_folder(root: Path, *, loose: bool = False) -> SourceListing:
    """List a folder tree: ``root/<class>/**/<image>`` (and ``root/<image>`` when ``loose``);
    symlinks are not followed."""
    items: list[SourceItem] = []
    problems: list[SourceProblem] = []
    folders: list[str] = []
    for entry in sorted(root.iterdir()):
        if _hidden((entry.name,)):
            continue
        if entry.is_symlink():
            problems.append(SourceProblem(entry.name, "symbolic links are not followed; skipped."))
            continue
        if entry.is_file() and loose:
            if entry.suffix.lower() in IMAGE_EXTENSIONS:
                items.append(SourceItem("", entry.name, entry.read_bytes))
            else:
                problems.append(SourceProblem(entry.name, _not_image_message(entry.suffix)))
            continue
        if entry.is_file():
            problems.append(
                SourceProblem(
                    entry.name, "file is not inside a class folder (one folder per person); skipped."
                )
            )
            continue
        folders.append(entry.name)
        for dirpath, dirnames, filenames in os.walk(entry):
            dirnames[:] = sorted(d for d in dirnames if not _hidden((d,)))
            for fname in sorted(filenames):
                full = Path(dirpath) / fname
                rel = full.relative_to(root).as_posix()
                if _hidden((fname,)):
                    continue
                if full.is_symlink():
                    problems.append(
                        SourceProblem(rel, "symbolic links are not followed; skipped.", entry.name)
                    )
                elif full.suffix.lower() not in IMAGE_EXTENSIONS:
                    problems.append(SourceProblem(rel, _not_image_message(full.suffix), entry.name))
                else:
                    items.append(SourceItem(entry.name, rel, full.read_bytes))
    return SourceListing(items, problems, folders)


def _not_image_message(suffix: str) -> str:
    if suffix.lower() == ".zip":
        return "nested zip archives are not opened; unzip it and upload its images."
    exts = ", ".join(sorted(IMAGE_EXTENSIONS))
    return f"not an image extension ({suffix or 'none'}); accepted: {exts}. Skipped."


def _entry_name(info: zipfile.ZipInfo) -> tuple[str, str | None]:
    """The entry's name, re-decoded as UTF-8 where the zip did not flag it; and a note if not."""
    name = info.filename
    if info.flag_bits & 0x800:
        return name, None
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name, None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return name, "name is not UTF-8; read with the legacy zip encoding (CP437)"


def _parts(name: str) -> tuple[str, ...]:
    """An entry name's folders and file name: ``\\`` read as ``/``, empty and ``.`` segments dropped."""
    return tuple(p for p in name.replace("\\", "/").split("/") if p and p != ".")


def _unsafe_reason(name: str, info: zipfile.ZipInfo) -> str | None:
    if "\x00" in name:
        return "name contains a NUL byte"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or norm.startswith("//"):
        return "absolute path: the entry would be written outside its folder"
    if ".." in PurePosixPath(norm).parts:
        return "path contains '..': the entry would be written outside its folder"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link: links are not followed"
    return None


def open_zip(path: Path, *, limits: ZipLimits) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """The archive and its entries, once it is a readable zip within ``limits``' entry count and
    declared size (:class:`UnsafeArchiveError` otherwise). Entries are not checked one by one."""
    try:
        zf = zipfile.ZipFile(path)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsafeArchiveError(f"{path.name}: not a zip archive, or a damaged one ({exc}).") from exc
    if len(infos) > limits.max_entries:
        raise UnsafeArchiveError(
            f"{path.name}: {len(infos):,} entries is over the limit of {limits.max_entries:,}."
        )
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_total_bytes:
        raise UnsafeArchiveError(
            f"{path.name}: the archive declares {declared:,} bytes uncompressed, over the limit "
            f"of {limits.max_total_bytes:,} bytes (a zip bomb?)."
        )
    return zf, infos


def list_zip(path: Path, *, limits: ZipLimits, loose: bool = False) -> SourceListing:
    """List a zip archive's image entries under ``limits``; refuse the archive or entries."""
    zf, infos = open_zip(path, limits=limits)
    budget = _ReadBudget(limits.max_total_bytes)
    entries: list[tuple[str, zipfile.ZipInfo]] = []
    problems: list[SourceProblem] = []
    folders: set[str] = set()
    for info in infos:
        name, note = _entry_name(info)
        reason = _unsafe_reason(name, info)
        if reason:
            problems.append(SourceProblem(name, f"refused: {reason}."))
            continue
        parts = _parts(name)
        if not parts or _hidden(parts):
            continue
        if note:
            problems.append(SourceProblem(name, f"note: {note}."))
        entries.append((name, info))
    # A single wrapping folder (``data/alice/1.jpg``) is unwrapped.
    split = [_parts(n) for n, _ in entries]
    files = [p for p, (_, i) in zip(split, entries, strict=True) if not i.is_dir()]
    strip = 1 if files and len({p[0] for p in files}) == 1 and all(len(p) >= 3 for p in files) else 0
    items: list[SourceItem] = []
    seen_lower: dict[str, str] = {}
    for parts, (name, info) in zip(split, entries, strict=True):
        parts = parts[strip:]
        if not parts:
            continue
        if info.is_dir():
            folders.add(parts[0])
            continue
        if len(parts) == 1 and not loose:
            problems.append(
                SourceProblem(name, "file is not inside a class folder (one folder per person); skipped.")
            )
            continue
        cls = parts[0] if len(parts) > 1 else ""
        if cls:
            folders.add(cls)
        key = "/".join(parts).casefold()
        if key in seen_lower:
            problems.append(
                SourceProblem(
                    name, f"duplicate of {seen_lower[key]!r} differing only in letter case; skipped.", cls
                )
            )
            continue
        seen_lower[key] = name
        suffix = PurePosixPath(parts[-1]).suffix.lower()
        if suffix not in IMAGE_EXTENSIONS:
            problems.append(SourceProblem(name, _not_image_message(suffix), cls))
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.max_entry_bytes or ratio > limits.max_ratio:
            problems.append(
                SourceProblem(
                    name,
                    f"refused: {info.file_size:,} bytes uncompressed (ratio {ratio:.0f}:1) is over "
                    f"the per-file limit of {limits.max_entry_bytes:,} bytes.",
                    cls,
                )
            )
            continue
        items.append(
            SourceItem(cls, "/".join(parts), _zip_reader(zf, info, name, limits.max_entry_bytes, budget))
        )
    return SourceListing(items, problems, sorted(folders))


class _ReadBudget:
    """Counts the bytes actually decompressed from one archive, whatever the headers say."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, n: int, name: str) -> None:
        self.left -= n
        if self.left < 0:
            raise UnsafeArchiveError(
                f"{name}: the archive decompresses to more bytes than its limit allows "
                "(its headers understate its size: a zip bomb?)."
            )


def _zip_reader(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, max_bytes: int, budget: _ReadBudget
) -> Callable[[], bytes]:
    def read() -> bytes:
        chunks: list[bytes] = []
        total = 0
        try:
            with zf.open(info) as fh:
                while chunk := fh.read(1 << 16):
                    total += len(chunk)
                    budget.take(len(chunk), name)
                    if total > max_bytes or total > info.file_size:
                        raise ArchiveEntryError(
                            f"{name}: decompresses past its declared size or the per-file limit "
                            f"of {max_bytes:,} bytes; refused."
                        )
                    chunks.append(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
            raise ArchiveEntryError(f"{name}: cannot be read from the archive ({exc}).") from exc
        return b"".join(chunks)

    return read
