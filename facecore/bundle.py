"""Demo bundles: a workspace's datasets (test faces), runs and galleries in one zip, and back.

``make_bundle(OUT.zip)`` packs what a hosted demo shows: of each dataset its ``dataset.json``
and the rows and face crops of its **test** split (``manifest.csv`` keeps only those rows, with
each ``source`` cut to its file name, so no path of the presenter's machine is published); of each
finished run ``best.pt`` and the files evaluate, compare and the pages read (config, metrics,
summary, evaluations), not ``last.pt`` (optimizer state) nor the nearest-image cache; each
gallery whole (it checks its own faces). ``facecore-bundle.json`` at the top of the zip lists
every file with its size, sha256 and modification time, with the facecore version and the date.

``unpack_bundle(BUNDLE.zip)`` checks the zip like an upload (entries escaping their folder,
links, sizes, the bytes actually read), extracts into a staging folder inside the workspace,
verifies every sha256, and only then moves each dataset, run and gallery into place. A folder that
already holds the same files is left alone (its evaluations and caches, remade where they are
used, are not compared); one holding other data is refused unless ``force``.
File times are restored, so saved evaluations stay valid (they are compared with the
checkpoint's and the manifest's times).

``FACECORE_BUNDLE=path.zip`` (:func:`ensure_env_bundle`, called where the CLI and the app start)
unpacks a bundle once into ``FACECORE_HOME``; a process that finds the same bundle unpacked
already does nothing and says so. With ``FACECORE_BUNDLE`` set and ``FACECORE_MODE`` unset, the
workspace is read-only (presentation mode, :mod:`facecore.mode`).
"""

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock

from facecore import __version__, workspace
from facecore.data.manifest import STORED, read_manifest, write_manifest
from facecore.data.sources import ZipLimits, _ReadBudget, _unsafe_reason, open_zip
from facecore.errors import BundleError, UnsafeArchiveError
from facecore.mode import BUNDLE_ENV, require_writable

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
_STORED_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".pt", ".npz", ".onnx")


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


# --- packing ---------------------------------------------------------------------------------------


def _names(root: Path, marker: str) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir()
        if (p / marker).is_file() and not p.name.startswith(".")
        and p.name not in workspace.RESERVED_RUN_NAMES
    )  # fmt: skip


def _pick(kind: str, asked: list[str] | None, have: list[str]) -> list[str]:
    if asked is None:
        return have
    missing = [a for a in asked if a not in have]
    if missing:
        raise BundleError(
            f"No {kind} {', '.join(map(repr, missing))} in {workspace.home()} "
            f"({kind}: {', '.join(have) or 'none'})."
        )
    return list(dict.fromkeys(asked))


def _tree(folder: Path, skip: Iterable[str] = (), skip_prefix: tuple[str, ...] = ()) -> list[Path]:
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


def _dataset_files(name: str, splits: tuple[str, ...]) -> list[tuple[str, Path | bytes, int]]:
    """``(bundle path, file or bytes, mtime_ns)`` of a dataset: dataset.json, the manifest rows of
    ``splits`` (sources cut to file names) and their face crops."""
    folder = workspace.dataset_path(name)
    rows = [r for r in read_manifest(folder / "manifest.csv") if r.status in STORED and r.split in splits]
    for r in rows:
        r.source = PurePosixPath(r.source.split("::")[-1].replace("\\", "/")).name
        if not (folder / r.file).is_file():
            raise BundleError(f"Dataset {name!r}: {r.file} is in manifest.csv but not on disk.")
    tmp = folder.parent / f".bundle-manifest-{uuid.uuid4().hex[:8]}.csv"
    try:
        write_manifest(tmp, rows)
        manifest = tmp.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    base = f"datasets/{folder.name}"
    mtime = (folder / "manifest.csv").stat().st_mtime_ns
    out: list[tuple[str, Path | bytes, int]] = [
        (f"{base}/dataset.json", folder / "dataset.json", (folder / "dataset.json").stat().st_mtime_ns),
        (f"{base}/manifest.csv", manifest, mtime),
    ]
    for r in sorted(rows, key=lambda r: r.file):
        out.append((f"{base}/{r.file}", folder / r.file, (folder / r.file).stat().st_mtime_ns))
    return out


def _run_dataset(run: Path) -> str | None:
    try:
        return json.loads((run / "config.json").read_text("utf-8")).get("dataset")
    except (OSError, ValueError, AttributeError):
        return None


def _gallery_needs(folder: Path) -> tuple[str | None, list[str]]:
    """The run a gallery embeds with (``run:RUN`` embedders), and the datasets of its evaluations."""
    run = None
    try:
        embedder = json.loads((folder / "gallery.json").read_text("utf-8")).get("embedder") or {}
        name = str(embedder.get("name", ""))
        run = name.removeprefix("run:") if name.startswith("run:") else None
    except (OSError, ValueError, AttributeError):
        pass
    datasets = []
    for metrics in sorted(folder.glob("eval/*/metrics.json")):
        try:
            datasets.append(str(json.loads(metrics.read_text("utf-8"))["dataset"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return run, list(dict.fromkeys(datasets))


def make_bundle(
    out: str | Path,
    *,
    datasets: list[str] | None = None,
    runs: list[str] | None = None,
    galleries: list[str] | None = None,
    all_faces: bool = False,
) -> BundleReport:
    """Pack datasets, runs and galleries of the workspace into the zip ``out``, atomically.

    All three None: everything. Otherwise what is named, plus what it needs: the dataset each run
    was trained on (evaluating it needs the test faces), the datasets each gallery was evaluated
    on, and the run a ``run:RUN`` gallery embeds with. ``all_faces``: every split's faces, not only
    the test split's (for the closest training images and int8 calibration on the Live page).
    """
    t0 = time.monotonic()
    everything = datasets is None and runs is None and galleries is None
    have_ds = _names(workspace.datasets_dir(), "dataset.json")
    have_runs = [r for r in _names(workspace.models_dir(), "best.pt")
                 if (workspace.models_dir() / r / "summary.json").is_file()]
    have_gal = _names(workspace.galleries_dir(), "gallery.json")
    chosen_runs = _pick("run", runs if not everything else None, have_runs) if runs or everything else []
    chosen_gal = _pick("gallery", galleries, have_gal) if galleries or everything else []
    chosen_ds = _pick("dataset", datasets, have_ds) if datasets or everything else []
    notes = []
    for g in chosen_gal:  # a gallery built on a run's features needs that run
        run = _gallery_needs(workspace.galleries_dir() / g)[0]
        if run and run not in chosen_runs and run in have_runs:
            chosen_runs.append(run)
            notes.append(f"run {run!r} added: gallery {g!r} embeds faces with it")
    for g in chosen_gal:  # and its evaluations were made on a dataset's test faces
        for ds in _gallery_needs(workspace.galleries_dir() / g)[1]:
            if ds not in chosen_ds and ds in have_ds:
                chosen_ds.append(ds)
                notes.append(f"dataset {ds!r} added: gallery {g!r} was evaluated on it")
    for r in chosen_runs:
        ds = _run_dataset(workspace.models_dir() / r)
        if ds and ds not in chosen_ds:
            if ds in have_ds:
                chosen_ds.append(ds)
                notes.append(f"dataset {ds!r} added: run {r!r} is evaluated on it")
            else:
                notes.append(f"run {r!r} was trained on dataset {ds!r}, not here: it cannot be evaluated")
    if not (chosen_ds or chosen_runs or chosen_gal):
        raise BundleError(f"Nothing to pack: {workspace.home()} has no datasets, finished runs or galleries.")

    splits = ("train", "val", "test") if all_faces else ("test",)
    entries: list[tuple[str, Path | bytes, int]] = []
    for name in chosen_ds:
        entries += _dataset_files(name, splits)
    for name in chosen_runs:
        folder = workspace.models_dir() / name
        skip_prefix = () if all_faces else RUN_SKIP_PREFIX
        entries += [(f"models/{name}/{p.relative_to(folder).as_posix()}", p, p.stat().st_mtime_ns)
                    for p in _tree(folder, RUN_SKIP, skip_prefix)]
    for name in chosen_gal:
        folder = workspace.galleries_dir() / name
        entries += [(f"galleries/{name}/{p.relative_to(folder).as_posix()}", p, p.stat().st_mtime_ns)
                    for p in _tree(folder)]

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    files: list[dict[str, Any]] = []
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for arc, src, mtime in entries:
                data = src if isinstance(src, bytes) else src.read_bytes()
                kind = zipfile.ZIP_STORED if arc.lower().endswith(_STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
                info = zipfile.ZipInfo(arc, date_time=time.gmtime(mtime / 1e9)[:6])
                info.compress_type = kind
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
                files.append({"path": arc, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                              "mtime_ns": mtime})
            manifest = {
                "format": FORMAT,
                "facecore_version": __version__,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "faces": "all" if all_faces else "test",
                "datasets": chosen_ds,
                "runs": chosen_runs,
                "galleries": chosen_gal,
                "total_bytes": sum(f["size"] for f in files),
                "files": files,
            }
            zf.writestr(MANIFEST, json.dumps(manifest, indent=1), compress_type=zipfile.ZIP_DEFLATED)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BundleReport(
        str(out), chosen_ds, chosen_runs, chosen_gal, len(files), out.stat().st_size,
        time.monotonic() - t0, notes=notes,
    )  # fmt: skip


# --- unpacking -------------------------------------------------------------------------------------


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
    files = ((p.relative_to(folder).as_posix(), p) for p in _tree(folder))
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
    t0 = time.monotonic()
    home = workspace.home()
    zf, manifest, entries = _open_checked(path)
    listed = {f["path"]: f for f in manifest["files"]}
    by_item: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for name, f in listed.items():
        kind, item, *rest = PurePosixPath(name).parts
        by_item.setdefault((kind, item), {})["/".join(rest)] = f
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


__all__ = ["BUNDLE_ENV", "BundleReport", "ensure_env_bundle", "make_bundle", "unpack_bundle"]

