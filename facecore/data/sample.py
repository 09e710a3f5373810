"""Sample datasets from a people-folder tree such as LFW (``Name/Name_0001.jpg``).

``select_people`` picks the N people with the most images plus an ``Unknown`` class of faces
of people outside them. With no tree on disk, :func:`fetch_lfw` downloads LFW through
scikit-learn's ``fetch_lfw_people`` loader into ``<FACECORE_HOME>/downloads``.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable
from pathlib import Path

from facecore import workspace
from facecore.constants import UNKNOWN
from facecore.data.dataset import import_dataset
from facecore.data.images import is_image_name
from facecore.data.sources import SourceItem, SourceListing
from facecore.errors import DatasetError, DownloadError
from facecore.mode import require_writable

LFW_APPROX_BYTES = 240 * 1024 * 1024


def people_tree(root: Path) -> dict[str, list[Path]]:
    """Each person folder under ``root`` with its sorted image files."""
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder of people (one subfolder per person).")
    tree = {}
    for person in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in person.iterdir() if f.is_file() and is_image_name(f.name))
        if files:
            tree[person.name] = files
    if not tree:
        raise DatasetError(f"{root} holds no person folders with images.")
    return tree


def select_people(
    root: Path,
    *,
    people: int = 7,
    min_images: int = 0,
    unknown: int = 100,
    max_per_person: int = 0,
    seed: int = 0,
) -> SourceListing:
    """The ``people`` people with the most images (at least ``min_images``), and ``Unknown``.

    ``Unknown`` holds one image from each of ``unknown`` people drawn (seeded) from everyone
    else. ``max_per_person`` > 0 caps each person's images (a seeded sample) for balance.
    """
    tree = people_tree(root)
    ranked = sorted(tree, key=lambda p: (-len(tree[p]), p))
    chosen = [p for p in ranked if len(tree[p]) >= max(min_images, 1)][:people]
    if len(chosen) < 1:
        raise DatasetError(f"No person in {root} has at least {min_images} images.")
    rng = random.Random(seed)
    items: list[SourceItem] = []
    for person in sorted(chosen):
        files = tree[person]
        if max_per_person and len(files) > max_per_person:
            files = sorted(rng.sample(files, max_per_person))
        items += [_item(person, root, f) for f in files]
    others = [p for p in ranked if p not in chosen]
    for person in sorted(rng.sample(others, min(unknown, len(others)))):
        items.append(_item(UNKNOWN, root, tree[person][0]))
    folders = sorted(chosen) + ([UNKNOWN] if unknown and others else [])
    return SourceListing(items=items, problems=[], class_folders=folders)


def _item(cls: str, root: Path, path: Path) -> SourceItem:
    return SourceItem(cls, path.relative_to(root).as_posix(), path.read_bytes)


def lfw_folder(data_home: Path | None = None) -> Path:
    """Where scikit-learn puts the funneled LFW tree under ``data_home``."""
    return (data_home or workspace.downloads_dir()) / "lfw_home" / "lfw_funneled"


def fetch_lfw(
    data_home: Path | None = None, *, progress: Callable[[int, int, str], None] | None = None
) -> Path:
    """Download (once) and unpack LFW with scikit-learn; return the people-folder tree.

    ``progress(bytes_so_far, approx_total, message)`` is called about once a second while
    scikit-learn downloads and unpacks the ~200 MB archive.
    """
    from sklearn.datasets import fetch_lfw_people

    data_home = data_home or workspace.downloads_dir()
    folder = lfw_folder(data_home)
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    data_home.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    handler = _ProgressHandler(progress)
    log = logging.getLogger("sklearn.datasets._lfw")
    log.addHandler(handler)
    old_level = log.level
    log.setLevel(logging.INFO)

    def watch() -> None:
        while not stop.wait(1.0):
            done = sum(f.stat().st_size for f in (data_home / "lfw_home").rglob("*") if f.is_file())
            if progress:
                progress(done, LFW_APPROX_BYTES, "downloading LFW")

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        fetch_lfw_people(
            data_home=str(data_home), funneled=True, download_if_missing=True, min_faces_per_person=70
        )
    except Exception as exc:  # urllib, OSError, tarfile: all mean "could not fetch"
        raise DownloadError(
            f"Could not download LFW through scikit-learn ({exc}). Check the internet connection, "
            "or pass a folder of people (one subfolder per person) with --source."
        ) from exc
    finally:
        stop.set()
        log.removeHandler(handler)
        log.setLevel(old_level)
    if not folder.is_dir():
        raise DownloadError(f"scikit-learn finished but {folder} is missing.")
    return folder


class _ProgressHandler(logging.Handler):
    def __init__(self, progress: Callable[[int, int, str], None] | None) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        if self.progress:
            self.progress(0, 0, record.getMessage())


def build_sample(
    name: str = "lfw-sample",
    *,
    source: Path | None = None,
    people: int = 7,
    min_images: int = 0,
    unknown: int = 100,
    max_per_person: int = 0,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    **import_options: object,
):
    """Build dataset ``name`` from ``source`` (or ``$FACECORE_LFW_SOURCE``, or LFW downloaded).

    Returns the :class:`~facecore.data.importer.ImportReport`. ``import_options`` go to
    :func:`facecore.data.dataset.import_dataset` (mode, detector, no_face, ...).
    """
    require_writable("Building the LFW sample")
    env = os.environ.get("FACECORE_LFW_SOURCE")
    root = Path(source) if source else Path(env) if env else fetch_lfw(progress=progress)
    listing = select_people(
        root, people=people, min_images=min_images, unknown=unknown, max_per_person=max_per_person, seed=seed
    )
    return import_dataset(listing, name, source_label=str(root), progress=progress, **import_options)
