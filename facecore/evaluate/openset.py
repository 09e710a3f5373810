"""Open-set scores and the threshold sweep: moved to :mod:`facecore.recognize.openset`,
below the runs and galleries that share it; re-exported here."""

from __future__ import annotations

from facecore.recognize.openset import (  # re-exported
    DEFAULT_THRESHOLD,
    KEEP_FRACTION,
    SCORES,
    THRESHOLD_SCORES,
    centroid_cosine,
    choose_score,
    class_centroids,
    operating_point,
    suggest_threshold,
    sweep,
    sweep_scores,
    unknown_scores,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "KEEP_FRACTION",
    "SCORES",
    "THRESHOLD_SCORES",
    "centroid_cosine",
    "choose_score",
    "class_centroids",
    "operating_point",
    "suggest_threshold",
    "sweep",
    "sweep_scores",
    "unknown_scores",
]
