"""What an evaluation returns (:class:`Evaluation`): moved to :mod:`facecore.recognize.result`,
below the runs and galleries that share it; re-exported here."""

from __future__ import annotations

from facecore.recognize.result import (  # re-exported
    GALLERY_KEYS,
    OPTIONAL_KEYS,
    RUN_KEYS,
    Evaluation,
    OpenSetResult,
)

__all__ = [
    "Evaluation",
    "GALLERY_KEYS",
    "OPTIONAL_KEYS",
    "OpenSetResult",
    "RUN_KEYS",
]
