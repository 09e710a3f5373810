"""The study's offline augmentation: K augmented copies of each training image, as a new dataset.

Validation and test images are copied unchanged (never augmented), with the same split, so a
model trained on the augmented dataset is compared on exactly the same held-out images.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facecore import workspace
from facecore.data.dataset import FaceDataset, load_dataset
from facecore.data.images import encode_jpeg, load_rgb
from facecore.data.importer import ProgressFn
from facecore.data.manifest import ManifestRow, write_manifest
from facecore.data.transforms import AugmentConfig, augment_image, is_deterministic
from facecore.errors import DatasetError, DatasetExistsError
from facecore.mode import require_writable


def augment_preview(
    ds: FaceDataset, pick: int, aug: AugmentConfig, *, seed: int = 0, count: int = 5
) -> tuple[ManifestRow, np.ndarray, list[Image.Image]]:
    """A stored face of ``ds`` (the ``pick``-th, counting round) and ``count`` random versions of it
    under ``aug``, as training would see them; version ``i`` is repeatable (seed ``seed * 1000 + i``)."""
    if not ds.stored:
        raise DatasetError(f"Dataset {ds.name!r} has no faces to augment.")
    row = ds.stored[pick % len(ds.stored)]
    image = load_rgb(ds.image_path(row))
    return row, image, [augment_image(image, aug, seed=seed * 1000 + i) for i in range(count)]


def augment_dataset(
    name: str,
    *,
    copies: int,
    out: str,
    aug: AugmentConfig | None = None,
    seed: int = 0,
    replace: bool = False,
    progress: ProgressFn | None = None,
) -> dict:
    """Write dataset ``out``: all of ``name`` plus ``copies`` augmented versions of each train image."""
    require_writable("Writing augmented images")
    if copies < 1:
        raise DatasetError(f"--copies must be at least 1, got {copies}.")
    aug = aug or AugmentConfig()
    if is_deterministic(aug):
        raise DatasetError("Every augmentation is switched off: the copies would equal the originals.")
    src = load_dataset(name)
    final = workspace.dataset_path(out)
    if final.resolve() == src.path.resolve():
        raise DatasetError("The augmented dataset needs a new name (--out), not the source's.")
    with workspace.staged_folder(final, lock_what="dataset name") as staged:
        if final.exists() and not replace:
            raise DatasetExistsError(f"A dataset named {final.name!r} already exists; pass --replace.")
        rows, report = _write(src.path, src.stored, staged, copies, aug, seed, progress)
        write_manifest(staged / "manifest.csv", rows)
        meta = dict(src.meta)
        meta.update(
            name=final.name,
            augmented_from=src.name,
            augment={"copies": copies, "seed": seed, **aug.to_dict()},
            images=len(rows),
            updated=time.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        workspace.atomic_write_text(staged / "dataset.json", json.dumps(meta, indent=2, ensure_ascii=False))
    return {"dataset": final.name, **report}


def _write(
    root: Path,
    stored: list[ManifestRow],
    staged: Path,
    copies: int,
    aug: AugmentConfig,
    seed: int,
    progress: ProgressFn | None,
) -> tuple[list[ManifestRow], dict]:
    rows: list[ManifestRow] = []
    train = [r for r in stored if r.split == "train"]
    for r in stored:
        (staged / r.file).parent.mkdir(parents=True, exist_ok=True)
        workspace.link_or_copy(root / r.file, staged / r.file)
        rows.append(dataclasses.replace(r))
    for i, r in enumerate(train):
        if progress:
            progress(i, len(train), r.file)
        with Image.open(root / r.file) as im:
            img = im.convert("RGB")
        for k in range(copies):
            out = augment_image(img, aug, size=img.width, seed=seed * 1_000_003 + i * 1000 + k)
            data = encode_jpeg(np.asarray(out))
            rel = Path(r.file).with_name(f"{Path(r.file).stem}_aug{k + 1}.jpg").as_posix()
            (staged / rel).write_bytes(data)
            rows.append(
                ManifestRow(
                    file=rel,
                    class_name=r.class_name,
                    split="train",
                    source=r.file,
                    sha256=hashlib.sha256(data).hexdigest(),
                    status="augmented",
                    message=f"augmented copy {k + 1} of {r.file}",
                )
            )
    if progress:
        progress(len(train), len(train), "done")
    return rows, {"train_images": len(train), "augmented": len(train) * copies, "images": len(rows)}
