"""An evaluation's ``predictions.csv``: moved to :mod:`facecore.recognize.prediction_rows`,
below the runs and galleries that share it; re-exported here."""

from __future__ import annotations

from facecore.recognize.prediction_rows import (  # re-exported
    COLUMNS,
    LABEL_COLUMNS,
    PredictionRow,
    cell_rows,
    merged_predictions,
    prediction_filters,
    predictions_by_file,
    read_predictions,
    write_predictions,
)

__all__ = [
    "COLUMNS",
    "LABEL_COLUMNS",
    "PredictionRow",
    "cell_rows",
    "merged_predictions",
    "prediction_filters",
    "predictions_by_file",
    "read_predictions",
    "write_predictions",
]
