"""Packing a demo bundle: :func:`make_bundle` writes the chosen datasets' test faces, runs and
galleries (with what they need) into one zip, with ``facecore-bundle.json`` listing every file."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import zipfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from facecore import __version__, workspace
from facecore.bundle.format import (
    FORMAT,
    MANIFEST,
    RUN_SKIP,
    RUN_SKIP_PREFIX,
    STORED_SUFFIXES,
    BundleReport,
    tree_files,
)
from facecore.data.manifest import STORED, read_manifest, write_manifest
from facecore.errors import BundleError

Entry = tuple[str, Path | bytes, int]


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
    chosen_ds, chosen_runs, chosen_gal, notes = _choose(datasets, runs, galleries)
    splits = ("train", "val", "test") if all_faces else ("test",)
    entries: list[Entry] = []
    for name in chosen_ds:
        entries += _dataset_files(name, splits)
    for name in chosen_runs:
        folder = workspace.models_dir() / name
        skip_prefix = () if all_faces else RUN_SKIP_PREFIX
        entries += [(f"models/{name}/{p.relative_to(folder).as_posix()}", p, p.stat().st_mtime_ns)
                    for p in tree_files(folder, RUN_SKIP, skip_prefix)]
    for name in chosen_gal:
        folder = workspace.galleries_dir() / name
        entries += [(f"galleries/{name}/{p.relative_to(folder).as_posix()}", p, p.stat().st_mtime_ns)
                    for p in tree_files(folder)]
    out = Path(out)
    n_files = _write_zip(out, entries, chosen_ds, chosen_runs, chosen_gal, all_faces)
    return BundleReport(
        str(out), chosen_ds, chosen_runs, chosen_gal, n_files, out.stat().st_size,
        time.monotonic() - t0, notes=notes,
    )  # fmt: skip


def _choose(
    datasets: list[str] | None, runs: list[str] | None, galleries: list[str] | None
) -> tuple[list[str], list[str], list[str], list[str]]:
    """The datasets, runs and galleries to pack (all three None: everything), each with what it
    needs, and a note for each item added because another needs it."""
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
    return chosen_ds, chosen_runs, chosen_gal, notes


def _write_zip(
    out: Path, entries: list[Entry], datasets: list[str], runs: list[str], galleries: list[str],
    all_faces: bool,
) -> int:
    """Write ``entries`` and the bundle manifest to the zip ``out`` atomically; the number of files."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    files: list[dict[str, Any]] = []
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for arc, src, mtime in entries:
                data = src if isinstance(src, bytes) else src.read_bytes()
                kind = zipfile.ZIP_STORED if arc.lower().endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
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
                "datasets": datasets,
                "runs": runs,
                "galleries": galleries,
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
    return len(files)
