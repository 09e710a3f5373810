"""The edit transaction of a dataset: :func:`run_edit` runs a change on a staged copy and swaps
the result in, and the helpers the edits share.

Every edit runs under the dataset's lock and builds the edited dataset in a staging folder
(hard links to the unchanged images, so it is cheap) that is swapped in whole, like an import:
a failed or interrupted edit leaves the dataset exactly as it was. Files in the staging folder
are hard links shared with the live dataset, so they are never written in place: new files are
written beside them and renamed over (:func:`facecore.workspace.atomic_write_bytes`).
Images that gain a place in the dataset get a split from :func:`finish_edit`
(:func:`facecore.data.splits.assign_splits`, with every existing assignment kept).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from facecore import workspace
from facecore.constants import CROP_MARGIN, CROP_SIZE, SPLITS, UNKNOWN
from facecore.data.manifest import STORED, ManifestRow, read_manifest, write_manifest
from facecore.data.splits import DEFAULT_RATIOS, assign_splits
from facecore.errors import DatasetError
from facecore.mode import require_writable


@dataclass
class EditResult:
    """What an edit did: a one-line ``message``, ``warnings`` to show, and the files touched."""

    dataset: str
    action: str
    message: str
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"warning: {w}" for w in self.warnings)])


@dataclass
class EditState:
    """The dataset being edited, in its staging folder."""

    name: str
    staged: Path
    meta: dict
    rows: list[ManifestRow]


def class_names(rows: Iterable[ManifestRow]) -> list[str]:
    """The people with at least one image file among ``rows``, sorted."""
    return sorted({r.class_name for r in rows if r.class_name and r.file})


def require_class(state: EditState, cls: str) -> None:
    """A :class:`DatasetError` unless the dataset being edited has person ``cls``."""
    if cls not in class_names(state.rows):
        have = ", ".join(class_names(state.rows)) or "none"
        raise DatasetError(f"Dataset {state.name!r} has no person {cls!r} (people: {have}).")


def _new_meta(name: str) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "name": name,
        "classes": [],
        "unknown_class": None,
        "seed": 0,
        "ratios": list(DEFAULT_RATIOS),
        "detector": "",
        "margin": CROP_MARGIN,
        "crop_size": CROP_SIZE,
        "created": now,
        "updated": now,
        "images": 0,
        "split_messages": [],
    }


def run_edit(
    name: str, action: str, change: Callable[[EditState], EditResult], *, create: bool = False
) -> EditResult:
    """Run ``change`` on a staged copy of dataset ``name`` and swap the result in."""
    require_writable("Editing a dataset")
    final = workspace.dataset_path(name)
    with workspace.staged_folder(final, lock_what="dataset name") as staged:
        exists = (final / "dataset.json").is_file()
        if not exists and not create:
            raise DatasetError(f"No dataset named {name!r}.")
        if exists:
            try:
                meta = json.loads((final / "dataset.json").read_text("utf-8"))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{final / 'dataset.json'} is damaged ({exc}).") from exc
            rows = read_manifest(final / "manifest.csv")
            workspace.link_tree(final, staged, exclude=("dataset.json", "manifest.csv"))
        else:
            meta, rows = _new_meta(final.name), []
        state = EditState(final.name, staged, meta, rows)
        result = change(state)
        finish_edit(state)
        _prune_empty_dirs(staged)
    result.action = action
    return result


def finish_edit(state: EditState) -> None:
    """Give new images a split (existing ones kept) and write manifest.csv and dataset.json."""
    meta = state.meta
    stored = [r for r in state.rows if r.status in STORED]
    labels = {r.sha256: r.class_name for r in stored}
    existing = {r.sha256: r.split for r in stored if r.split}
    splits, messages = assign_splits(
        labels, existing, ratios=meta.get("ratios", DEFAULT_RATIOS), seed=meta.get("seed", 0)
    )
    for r in stored:
        r.split = splits.get(r.sha256, "")
    classes = sorted({r.class_name for r in stored})
    meta.update(
        classes=classes,
        unknown_class=UNKNOWN if UNKNOWN in classes else None,
        images=len(stored),
        split_messages=messages,
        updated=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    write_manifest(state.staged / "manifest.csv", state.rows)
    workspace.atomic_write_text(state.staged / "dataset.json", json.dumps(meta, indent=2, ensure_ascii=False))


def _prune_empty_dirs(root: Path) -> None:
    for path in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(path.iterdir()):
            path.rmdir()


def split_warnings(state: EditState, classes: Iterable[str]) -> list[str]:
    """Warnings for ``classes`` left without images in a split, or with fewer than two classes."""
    out = []
    stored = [r for r in state.rows if r.status in STORED]
    for cls in sorted(set(classes)):
        mine = [r for r in stored if r.class_name == cls]
        if not mine:
            continue
        missing = [s for s in SPLITS if not any(r.split == s for r in mine)]
        if "train" in missing or "test" in missing:
            out.append(
                f"{cls!r} has no {' or '.join(missing)} images now; training refuses the dataset "
                "until every person has train and test images (add more images of them)."
            )
        elif missing:
            out.append(f"{cls!r} has no validation images now; add more images of them.")
    n = len({r.class_name for r in stored})
    if n == 0:
        out.append(f"Dataset {state.name!r} has no images left; add people before training.")
    elif n == 1:
        out.append(
            "The dataset has one person: a classifier needs at least two (add another person, or "
            "an Unknown class of other people's faces)."
        )
    return out


def find_row(state: EditState, file: str) -> ManifestRow:
    """The manifest row of ``file`` (its path in the dataset, or a unique file name)."""
    want = PurePosixPath(file.replace("\\", "/")).as_posix().lstrip("/")
    with_files = [r for r in state.rows if r.file]
    for r in with_files:
        if r.file == want:
            return r
    by_name = [r for r in with_files if PurePosixPath(r.file).name == PurePosixPath(want).name]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise DatasetError(
            f"{file!r} matches {len(by_name)} images in {state.name!r}; give its full path "
            f"({', '.join(r.file for r in by_name[:3])})."
        )
    raise DatasetError(f"Dataset {state.name!r} has no image {file!r}.")


def remove_file(state: EditState, rel: str) -> None:
    path = state.staged / rel
    if path.is_file():
        path.unlink()
