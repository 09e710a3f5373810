"""Unpacking a demo bundle: :func:`unpack_bundle` checks the zip like an upload, extracts it into
a staging folder inside the workspace, verifies every sha256 and only then moves each dataset,
run and gallery into place; :func:`ensure_env_bundle` does it once for ``$FACECORE_BUNDLE``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import time
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock

from facecore import __version__, workspace
from facecore.bundle.format import (
    FORMAT,
    KINDS,
    LIMITS,
    MANIFEST,
    MARKER,
    MAX_MANIFEST_BYTES,
    RUN_SKIP_PREFIX,
    BundleReport,
    tree_files,
)
from facecore.data.sources import _ReadBudget, _unsafe_reason, open_zip
from facecore.errors import BundleError, UnsafeArchiveError
from facecore.mode import BUNDLE_ENV, require_writable


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path | None, budget: _ReadBudget,
                max_bytes: int) -> tuple[str, bytes | None]:
    """Stream one entry (to ``dest``, or into memory when None) under the limits: ``(sha256, data)``."""
    h = hashlib.sha256()
    total = 0
    chunks: list[bytes] = []
    try:
        with zf.open(info) as src, (dest.open("xb") if dest else io.BytesIO()) as sink:
            while chunk := src.read(1 << 20):
                total += len(chunk)
                budget.take(len(chunk), info.filename)
                if total > max_bytes or total > info.file_size:
                    raise BundleError(
                        f"{info.filename}: decompresses past its declared size or the limit of "
                        f"{max_bytes:,} bytes; refused."
                    )
                h.update(chunk)
                if dest is None:
                    chunks.append(chunk)
                else:
                    sink.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise BundleError(f"{info.filename}: cannot be read from the bundle ({exc}).") from exc
    return h.hexdigest(), (b"".join(chunks) if dest is None else None)


def _open_checked(path: Path) -> tuple[zipfile.ZipFile, dict[str, Any], dict[str, zipfile.ZipInfo]]:
    """The zip, its manifest, and its entries by name, after every check that needs no extraction."""
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle file.")
    try:
        zf, infos = open_zip(path, limits=LIMITS)  # the same archive checks as an upload's
    except UnsafeArchiveError as exc:
        raise BundleError(str(exc)) from exc
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        reason = _unsafe_reason(info.filename, info)
        if reason:
            raise BundleError(
                f"{path.name}: entry {info.filename!r} refused: {reason}. Nothing was unpacked."
            )
        if info.is_dir():
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > LIMITS.max_entry_bytes or (ratio > LIMITS.max_ratio and info.file_size > 2**20):
            raise BundleError(
                f"{path.name}: entry {info.filename!r} is {info.file_size:,} bytes uncompressed "
                f"(ratio {ratio:.0f}:1), over the limits. Nothing was unpacked."
            )
        entries[info.filename] = info
    if MANIFEST not in entries:
        raise BundleError(f"{path.name}: not a facecore bundle (no {MANIFEST}); make one with "
                          "python -m facecore demo bundle OUT.zip.")
    if entries[MANIFEST].file_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path.name}: {MANIFEST} is over {MAX_MANIFEST_BYTES:,} bytes.")
    _, raw = _read_entry(zf, entries[MANIFEST], None, _ReadBudget(MAX_MANIFEST_BYTES), MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(raw or b"")
        files = manifest["files"]
        if manifest.get("format") != FORMAT or not isinstance(files, list):
            raise ValueError(f"format {manifest.get('format')!r}")
        listed = {f["path"]: f for f in files}
        for f in files:
            int(f["size"]), str(f["sha256"]), int(f["mtime_ns"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path.name}: {MANIFEST} is damaged or of another format ({exc}).") from exc
    extra = sorted(set(entries) - set(listed) - {MANIFEST})
    missing = sorted(set(listed) - set(entries))
    if extra or missing:
        raise BundleError(f"{path.name}: the files do not match {MANIFEST} (not listed: {extra[:3]}, "
                          f"missing: {missing[:3]}). Nothing was unpacked.")
    for name in listed:
        parts = PurePosixPath(name).parts
        if (len(parts) < 3 or parts[0] not in KINDS or any(p.startswith(".") for p in parts)
                or (parts[0] == "models" and parts[1] in workspace.RESERVED_RUN_NAMES)
                or parts[1] != workspace.safe_name(parts[1])):
            raise BundleError(f"{path.name}: entry {name!r} is not a dataset, run or gallery file. "
                              "Nothing was unpacked.")
        if entries[name].file_size != int(listed[name]["size"]):
            raise BundleError(f"{path.name}: {name} is not the size {MANIFEST} gives. Nothing was unpacked.")
    return zf, manifest, entries


def _derived(rel: str) -> bool:
    """A file made from the others, which may change where it is used: evaluations and caches."""
    return rel.startswith(("eval_", "eval/")) or PurePosixPath(rel).name.startswith(RUN_SKIP_PREFIX)


def _folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` but hidden and derived ones, by relative path."""
    if not folder.is_dir():
        return {}
    files = ((p.relative_to(folder).as_posix(), p) for p in tree_files(folder))
    return {rel: workspace.sha256_file(p) for rel, p in files if not _derived(rel)}


def _read_marker(home: Path) -> dict[str, Any]:
    try:
        data = json.loads((home / MARKER).read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def unpack_bundle(path: str | Path, *, force: bool = False) -> BundleReport:
    """Restore the bundle at ``path`` into ``FACECORE_HOME`` (see the module's docstring).

    Refused in presentation mode (it adds data), unless through :func:`ensure_env_bundle`.
    """
    require_writable("Unpacking a demo bundle")
    home = workspace.home()
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / ".facecore-bundle.lock"), timeout=600):
        return _unpack(Path(path), force=force)


def _unpack(path: Path, *, force: bool) -> BundleReport:
    """Unpack the bundle at ``path`` into the workspace (the caller holds the bundle lock)."""
    t0 = time.monotonic()
    home = workspace.home()
    zf, manifest, entries = _open_checked(path)
    listed = {f["path"]: f for f in manifest["files"]}
    by_item: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for name, f in listed.items():
        kind, item, *rest = PurePosixPath(name).parts
        by_item.setdefault((kind, item), {})["/".join(rest)] = f
    todo, same = _plan(path, home, zf, by_item, force=force)
    _extract(path, home, zf, entries, by_item, todo)
    items = {f"{kind}/{item}": {rel: f["sha256"] for rel, f in files.items() if not _derived(rel)}
             for (kind, item), files in by_item.items()}
    stat = path.stat()
    workspace.atomic_write_text(home / MARKER, json.dumps({
        "bundle": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
        "sha256": workspace.sha256_file(path), "created": manifest.get("created"),
        "facecore_version": manifest.get("facecore_version"), "items": items,
    }, indent=1))
    notes = []
    if manifest.get("facecore_version") != __version__:
        notes.append(f"made by facecore {manifest.get('facecore_version')}, this is {__version__}")
    return BundleReport(
        str(path), list(manifest.get("datasets", [])), list(manifest.get("runs", [])),
        list(manifest.get("galleries", [])), len(listed), sum(int(f["size"]) for f in listed.values()),
        time.monotonic() - t0, written=[f"{k}/{i}" for k, i in todo], unchanged=[f"{k}/{i}" for k, i in same],
        notes=notes,
    )  # fmt: skip


def _plan(
    path: Path, home: Path, zf: zipfile.ZipFile, by_item: dict[tuple[str, str], dict[str, dict[str, Any]]],
    *, force: bool,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(items to write, items already there with the same files)``; other data where an item
    goes is refused (the zip closed) unless ``force`` or a previous bundle put it there unchanged."""
    previous = _read_marker(home).get("items", {})
    # What is there already: the same files (nothing to do), data a previous bundle put there
    # unchanged (replaced), or other data (refused without force).
    todo, same, conflicts = [], [], []
    for (kind, item), files in sorted(by_item.items()):
        final = home / kind / item
        have = _folder_digest(final)
        want = {rel: f["sha256"] for rel, f in files.items() if not _derived(rel)}
        if not final.exists():
            todo.append((kind, item))
        elif have == want:
            same.append((kind, item))
        elif force or have == previous.get(f"{kind}/{item}"):
            todo.append((kind, item))
        else:
            conflicts.append(f"{kind}/{item}")
    if conflicts:
        zf.close()
        raise BundleError(
            f"{path.name}: {home} already has different data under {', '.join(conflicts)}; nothing was "
            "unpacked. Unpack into an empty FACECORE_HOME, delete those, or replace them with "
            "python -m facecore demo unpack BUNDLE --force."
        )
    return todo, same


def _extract(
    path: Path, home: Path, zf: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo],
    by_item: dict[tuple[str, str], dict[str, dict[str, Any]]], todo: list[tuple[str, str]],
) -> None:
    """Extract the ``todo`` items into a staging folder, check every sha256, then move each into
    place; the zip is closed and the staging folder removed either way."""
    staging = home / f".staging-bundle-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    budget = _ReadBudget(LIMITS.max_total_bytes)
    try:
        for kind, item in todo:
            for rel, f in by_item[(kind, item)].items():
                name = f"{kind}/{item}/{rel}"
                dest = staging / kind / item / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                digest, _ = _read_entry(zf, entries[name], dest, budget, LIMITS.max_entry_bytes)
                if digest != f["sha256"]:
                    raise BundleError(f"{path.name}: {name} does not match its sha256 in {MANIFEST} (damaged "
                                      "or altered). Nothing was unpacked.")
                os.utime(dest, ns=(f["mtime_ns"], f["mtime_ns"]))
        zf.close()
        for kind, item in todo:
            final = home / kind / item
            with workspace.folder_lock(final.parent, item, what=f"{kind} name"):
                workspace.recover(final)
                workspace.swap_in(staging / kind / item, final)
    finally:
        zf.close()
        shutil.rmtree(staging, ignore_errors=True)


_DONE: set[tuple[str, str]] = set()


def ensure_env_bundle() -> BundleReport | None:
    """Unpack the bundle named by ``$FACECORE_BUNDLE`` into the workspace, once.

    Called where the command line and the app start. Nothing to do (None): the variable is unset,
    or this process has done it for this bundle and workspace. The same bundle found unpacked
    already (the workspace remembers its size, time and sha256) is not unpacked again; either way
    one line on stderr says what happened. Runs in presentation mode too: it is the operator's
    setup, not a visitor's change.
    """
    value = os.environ.get(BUNDLE_ENV, "").strip()
    if not value:
        return None
    path, home = Path(value).expanduser(), workspace.home()
    key = (str(path), str(home))
    if key in _DONE:
        return None
    if not path.is_file():
        raise BundleError(f"{BUNDLE_ENV}={value}: no such file. Make one with python -m facecore demo bundle "
                          "OUT.zip, or unset the variable.")
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / ".facecore-bundle.lock"), timeout=600):
        marker, stat = _read_marker(home), path.stat()
        quick = marker.get("size") == stat.st_size and marker.get("mtime_ns") == stat.st_mtime_ns
        same = quick or (  # the sha256 is read only when size or time differ
            marker.get("size") == stat.st_size and marker.get("sha256") == workspace.sha256_file(path)
        )
        if same:
            print(f"facecore: bundle {path} is unpacked in {home} already; nothing to do.", file=sys.stderr)
            report = None
        else:
            report = _unpack(path, force=False)
            print(f"facecore: {report.summary('unpacked')} into {home}", file=sys.stderr)
    _DONE.add(key)
    return report


__all__ = ["BUNDLE_ENV", "ensure_env_bundle", "unpack_bundle"]
