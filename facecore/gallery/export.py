"""A gallery as two portable files that need only numpy (and json) to use.

``NAME.npz`` holds ``embeddings`` (N x D float32, unit rows), ``person`` and ``files`` (N strings,
unicode arrays: ``np.load(path)`` reads them without pickle); ``NAME.json`` says how to decide
with them: the embedder (the same one must embed the query faces), the cosine ``threshold`` and
whether it was calibrated, the crop ``margin``, the ``match`` rule (a person's score is their best
face, ``max``, or the mean of their 3 best, ``top3``), the faces per person and the npz's sha256.
Default place: ``FACECORE_HOME/exports/gallery-NAME.npz`` (a gallery's own folder is rewritten
whole on every enrollment, so an export inside it would not last).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import facecore
from facecore.errors import ExportError
from facecore.gallery.store import load_gallery
from facecore.mode import require_writable
from facecore.workspace import atomic_write_bytes, atomic_write_text, home

FORMAT = "facecore.gallery-export/1"


def export_gallery(name: str, *, out: str | Path | None = None) -> dict[str, Any]:
    """Write gallery ``name`` as ``.npz`` + ``.json`` (``out``: an ``.npz`` file or a folder);
    returns the JSON with ``npz_path`` and ``json_path``."""
    require_writable("Exporting a gallery")
    gallery = load_gallery(name)
    if not gallery.files:
        raise ExportError(f"Gallery {gallery.name!r} is empty: enroll someone before exporting it.")
    target = Path(out) if out else home() / "exports"
    npz_path = target if target.suffix == ".npz" else target / f"gallery-{gallery.name}.npz"
    json_path = npz_path.with_suffix(".json")
    if npz_path.is_dir() or json_path.is_dir():
        raise ExportError(f"{npz_path}: a folder is in the way of the exported file.")
    buf = io.BytesIO()
    np.savez(
        buf,
        embeddings=np.ascontiguousarray(gallery.embeddings, dtype=np.float32),
        person=np.array(gallery.person, dtype=str),
        files=np.array(gallery.files, dtype=str),
    )
    data = buf.getvalue()
    meta = {
        "format": FORMAT,
        "gallery": gallery.name,
        "npz_file": npz_path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "embedder": gallery.embedder_name,
        "embedder_info": gallery.meta.get("embedder"),
        "dim": int(gallery.embeddings.shape[1]),
        "faces": len(gallery.files),
        "people": gallery.counts(),
        "threshold": float(gallery.threshold),
        "calibrated": gallery.calibrated,
        "threshold_info": gallery.threshold_info,
        "margin": float(gallery.margin),
        "match": gallery.match,
        "match_k": 3,
        "rule": (
            "score of a person: the max (match=max) or the mean of the match_k best (match=top3) cosine "
            "similarities between the query's L2-normalised embedding and that person's rows; the best "
            "person is named when their score >= threshold, else Unknown"
        ),
        "facecore": facecore.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_bytes(npz_path, data)
    atomic_write_text(json_path, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return {**meta, "npz_path": str(npz_path), "json_path": str(json_path)}


__all__ = ["export_gallery"]
