"""Where facecore keeps its files: ``FACECORE_HOME`` and the atomic-write helpers.

Layout under the workspace root (default: the current directory)::

    datasets/<name>/   imported face datasets (crops, manifest.csv, dataset.json)
    models/<run>/      trained runs (checkpoints, metrics.csv, config)
    detectors/         detector model files (YuNet .onnx)
    downloads/         raw downloads (LFW via scikit-learn)
    galleries/<name>/  enrolled people for recognition by embedding (faces, embeddings, threshold)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from filelock import FileLock

from facecore.errors import DatasetError

_NAME_BAD = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def home() -> Path:
    """The workspace root: ``$FACECORE_HOME`` or the current directory."""
    return Path(os.environ.get("FACECORE_HOME") or os.getcwd()).resolve()


def datasets_dir() -> Path:
    return home() / "datasets"


#: a folder of ``models/`` that is never a run: checkouts of facecore 0.1 kept the bundled model
#: files there (now ``facecore/model_files``), so no run is given this name
RESERVED_RUN_NAMES = frozenset({"pretrained"})


def models_dir() -> Path:
    return home() / "models"


def detectors_dir() -> Path:
    return home() / "detectors"


def downloads_dir() -> Path:
    return home() / "downloads"


def galleries_dir() -> Path:
    return home() / "galleries"


def safe_name(name: str, *, what: str = "name") -> str:
    """Return ``name`` as a portable file or folder name, or raise if nothing usable is left.

    Unicode letters and spaces are kept (NFC-normalised); characters that are invalid on
    Windows, macOS or Linux become ``_``; leading/trailing dots and spaces are stripped.
    """
    cleaned = unicodedata.normalize("NFC", name)
    cleaned = _NAME_BAD.sub("_", cleaned).strip(" .")
    if cleaned.upper().split(".")[0] in _WINDOWS_RESERVED:
        cleaned = f"_{cleaned}"
    if not cleaned or set(cleaned) == {"_"}:
        raise DatasetError(f"The {what} {name!r} has no usable characters; use letters or digits.")
    return cleaned[:120]


def dataset_path(name: str) -> Path:
    return datasets_dir() / safe_name(name, what="dataset name")


@contextlib.contextmanager
def dataset_lock(name: str, timeout: float = 600.0) -> Iterator[None]:
    """Serialise writers of one dataset across processes (imports, appends, edits): the lock
    :func:`staged_folder` takes for ``datasets/<name>``."""
    with folder_lock(datasets_dir(), name, what="dataset name", timeout=timeout):
        yield


@contextlib.contextmanager
def folder_lock(root: Path, name: str, *, what: str, timeout: float = 600.0) -> Iterator[None]:
    """Serialise writers of ``root/<name>`` across processes with ``root/.<name>.lock``."""
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{safe_name(name, what=what)}.lock"), timeout=timeout):
        yield


@contextlib.contextmanager
def staged_folder(final: Path, *, keep: Iterable[str] = (), lock_what: str = "name") -> Iterator[Path]:
    """Change the folder ``final`` all at once: lock, recover, stage, then swap in or discard.

    Yields a fresh staging folder holding hard links (or copies) of the entries of ``final``
    named in ``keep`` (``"*"``: all of them). When the block ends normally the staging folder
    replaces ``final`` (:func:`swap_in`); when it raises, it is deleted and ``final`` is
    untouched. Writers of one folder are serialised by a file lock beside it.
    """
    keep = set(keep)
    with folder_lock(final.parent, final.name, what=lock_what):
        recover(final)
        staged = staging_dir(final)
        try:
            if final.is_dir() and keep:
                link_tree(final, staged, only=None if "*" in keep else keep)
            yield staged
            swap_in(staged, final)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise


def link_tree(
    src: Path, dst: Path, *, only: Iterable[str] | None = None, exclude: Iterable[str] = ()
) -> None:
    """Hard-link (or copy) the entries of folder ``src`` into ``dst``: those named in ``only`` (all
    when None), less those in ``exclude``; subfolders whole."""
    only, exclude = (None if only is None else set(only)), set(exclude)
    for item in src.iterdir():
        if (only is not None and item.name not in only) or item.name in exclude:
            continue
        if item.is_dir():
            shutil.copytree(item, dst / item.name, copy_function=link_or_copy)
        else:
            link_or_copy(item, dst / item.name)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def staging_dir(final: Path) -> Path:
    """A fresh hidden folder beside ``final`` to build it in before :func:`swap_in`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    path = final.parent / f".staging-{final.name}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


def swap_in(staged: Path, final: Path) -> None:
    """Put the folder ``staged`` at ``final``, replacing what was there, as atomically as POSIX allows.

    The old folder is first renamed aside (``.old-<name>-*``), the new one renamed in, then the
    old one removed. If the process dies between the two renames, :func:`recover` puts the old
    folder back, so a reader never finds a half-written folder under ``final``.
    """
    old = None
    if final.exists():
        old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
    try:
        os.rename(staged, final)
    except BaseException:
        if old is not None:
            os.rename(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover(final: Path) -> None:
    """Undo what an interrupted :func:`swap_in` or build of ``final`` left beside it.

    A ``.old-<name>-*`` folder is restored when ``<name>`` is missing, else removed; staging
    folders of ``<name>`` are removed. Call it while holding the writer's lock for ``final``.
    """
    parent = final.parent
    if not parent.is_dir():
        return
    for old in _leftovers(parent, "old", final.name):
        if not final.exists():
            os.rename(old, final)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for staged in _leftovers(parent, "staging", final.name):
        shutil.rmtree(staged, ignore_errors=True)


def _leftovers(parent: Path, kind: str, name: str) -> list[Path]:
    """``.<kind>-<name>-<8 hex>`` folders of exactly ``name`` (not of ``name-2`` or ``name-b``)."""
    pattern = re.compile(rf"\.{kind}-{re.escape(name)}-[0-9a-f]{{8}}")
    return sorted(p for p in parent.glob(f".{kind}-*") if pattern.fullmatch(p.name))


def link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Hard-link ``src`` to ``dst`` (cheap, and safe since stored files are never rewritten), else copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
