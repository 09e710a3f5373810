"""The embedders by name: :func:`list_embedders` (the pretrained ones, then every trained run) and
:func:`create_embedder`, which builds each once per process."""

from __future__ import annotations

import threading

from facecore.errors import EmbedderError
from facecore.gallery.dlib_embedder import DlibEmbedder, dlib_problem
from facecore.gallery.embedders import DLIB_NAME, RUN_PREFIX, SFACE_NAME, Embedder, EmbedderInfo
from facecore.gallery.run_embedder import RunEmbedder, stale
from facecore.gallery.sface_embedder import SFaceEmbedder, sface_problem
from facecore.recognize.runs import list_runs

_CACHE: dict[str, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def list_embedders(*, runs: bool = True) -> list[EmbedderInfo]:
    """The pretrained embedders, then (``runs``) every trained run as ``run:<RUN>``."""
    problem = dlib_problem()
    sface = sface_problem()
    out = [
        EmbedderInfo(
            DLIB_NAME,
            "dlib ResNet face descriptor, 128-d, pretrained on about 3 million faces (aligned with "
            "dlib's 5-point landmarks)",
            trained_here=False,
            available=problem is None,
            problem=problem,
        ),
        EmbedderInfo(
            SFACE_NAME,
            "OpenCV Zoo SFace, 128-d, LFW 99.40% (aligned with YuNet's 5 landmarks; ships in "
            "facecore/model_files)",
            trained_here=False,
            available=sface is None,
            problem=sface,
        ),
    ]
    if runs:
        for r in list_runs():
            out.append(
                EmbedderInfo(
                    f"{RUN_PREFIX}{r.run}",
                    f"penultimate features of the trained run {r.run} ({r.model})",
                    trained_here=True,
                    available=True,
                )
            )
    return out


def create_embedder(name: str, *, device: str = "auto") -> Embedder:
    """The embedder called ``name`` (``dlib_resnet``, ``sface`` or ``run:<RUN>``), built once per process.

    A run's embedder is rebuilt when its checkpoint changed.
    """
    name = str(name).strip()
    with _CACHE_LOCK:
        hit = _CACHE.get(name)
        if hit is not None and not (isinstance(hit, RunEmbedder) and stale(hit)):
            return hit
        if name == DLIB_NAME:
            emb: Embedder = DlibEmbedder()
        elif name == SFACE_NAME:
            emb = SFaceEmbedder()
        elif name.startswith(RUN_PREFIX) and len(name) > len(RUN_PREFIX):
            emb = RunEmbedder(name[len(RUN_PREFIX) :], device=device)
        else:
            raise EmbedderError(
                f"Unknown embedder {name!r}: choose {DLIB_NAME}, {SFACE_NAME}, or run:<RUN> for a "
                "trained run (python -m facecore gallery embedders lists them)."
            )
        _CACHE[name] = emb
        return emb
