"""The precision each live model classifies in (float32 or its int8 copy), and the torch threads
of the threads that classify.

:func:`choose_precision` decides for one model: a gallery's embedder and an ONNX export run as
they come; ``float32`` is float32; ``int8`` is the model's int8 copy when it has one; ``auto``
times both (:func:`time_precisions`) and takes the faster, on the CPU only.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from facecore.constants import CROP_SIZE
from facecore.errors import FacecoreError, QuantizationError

if TYPE_CHECKING:
    from facecore.recognize.protocol import Recognizer

FLOAT32, INT8 = "float32", "int8"


@dataclass(frozen=True)
class PrecisionChoice:
    """What one model classifies with: ``precision`` (``float32`` or ``int8``), why int8 was asked
    for (or considered by ``auto``) but is not used (``problem``), and with ``auto`` the
    milliseconds per face of each (``ms``)."""

    precision: str
    problem: str | None = None
    ms: dict[str, float] = field(default_factory=dict)


def choose_precision(model: Recognizer, precision: str, threads: int | None) -> PrecisionChoice:
    """How ``model`` classifies when ``precision`` (``auto``, ``float32`` or ``int8``) is asked
    for; ``auto`` times both with ``threads`` torch threads, as the worker will have."""
    if model.ref.is_gallery:  # its embedder has one precision
        return PrecisionChoice(FLOAT32)
    fixed = getattr(model, "fixed_precision", None)  # an ONNX export runs as it was exported
    if fixed:
        return PrecisionChoice(str(fixed))
    if precision == FLOAT32 or (precision == "auto" and model.device.type != "cpu"):
        return PrecisionChoice(FLOAT32)
    if model.needs_embeddings:
        return PrecisionChoice(
            FLOAT32,
            "it decides Unknown by its embedding's cosine to the class centroids, which the "
            "int8 copy does not give",
        )
    try:
        model.int8_model()
    except FacecoreError as exc:
        return PrecisionChoice(FLOAT32, str(exc))
    if precision == INT8:
        return PrecisionChoice(INT8)
    ms = time_precisions(model, threads)
    return PrecisionChoice(INT8 if ms[INT8] < ms[FLOAT32] else FLOAT32, ms=ms)


def precision_note(model: Recognizer, precision: str, ms: dict[str, float] | None) -> str:
    """One model's precision for people, with the timings ``auto`` chose by, e.g.
    ``int8 (float32 152 ms, int8 67 ms per face)``; for a gallery, what it matches against."""
    if model.ref.is_gallery:
        gallery: Any = model  # a GalleryModel: its embedder and its enrolled faces
        faces = len(gallery.gallery.files)
        return f"{gallery.embedder.name} embeddings matched against {faces} enrolled faces"
    timed = f" (float32 {ms['float32']:.0f} ms, int8 {ms['int8']:.0f} ms per face)" if ms else ""
    return precision + timed


def limit_torch_threads(n: int) -> None:
    """Give the calling thread ``n`` torch intra-op threads, leaving every other thread's as it was.

    ``torch.set_num_threads`` sets the calling thread's OpenMP/MKL threads and the default for
    threads that run torch for the first time later (a Streamlit server starts a new thread for
    each script run); a short helper thread puts that default back.
    """
    import torch

    default = torch.get_num_threads()
    torch.set_num_threads(n)
    if default != n:
        helper = threading.Thread(target=torch.set_num_threads, args=(default,), name="facecore-threads")
        helper.start()
        helper.join()


def time_precisions(model: Recognizer, threads: int | None, runs: int = 3) -> dict[str, float]:
    """Milliseconds to classify one face in float32 and in int8: the best of ``runs`` after a
    warm-up, in a helper thread with ``threads`` torch threads (as the worker will have).

    Raises :class:`~facecore.errors.QuantizationError` when either fails (float32 still may be
    asked for)."""
    face = np.full((CROP_SIZE, CROP_SIZE, 3), 128, np.uint8)
    timings: dict[str, float] = {}
    errors: list[str] = []

    def measure() -> None:
        try:
            if threads:
                limit_torch_threads(int(threads))
            for key, int8 in ((FLOAT32, False), (INT8, True)):
                model.probabilities(face, int8=int8)
                best = math.inf
                for _ in range(runs):
                    t0 = time.perf_counter()
                    model.probabilities(face, int8=int8)
                    best = min(best, time.perf_counter() - t0)
                timings[key] = round(best * 1000.0, 2)
        except Exception as exc:  # reported below, in the constructing thread
            errors.append(f"{type(exc).__name__}: {exc}")

    helper = threading.Thread(target=measure, name="facecore-precision")
    helper.start()
    helper.join()
    if errors:
        raise QuantizationError(f"Could not time {model.run} in float32 and int8: {errors[0]}")
    return timings


__all__ = ["PrecisionChoice", "choose_precision", "limit_torch_threads", "precision_note", "time_precisions"]
