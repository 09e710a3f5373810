"""Evaluation: metrics on a split, predictions, open set, comparison reports, figures and speed
benchmarks.
"""

from facecore._lazy import lazy_exports

_EXPORTS = {
    "MAX_RUNS": ".compare",
    "cli_names": ".tables",
    "metrics_table": ".tables",
    "operating_points": ".tables",
    "short_names": ".tables",
    "summary_row": ".compare",
    "cached_evaluation": ".locate",
    "evaluate_run": ".evaluation",
    "balance_figure": ".figures",
    "bars_figure": ".figures",
    "confusion_select_figure": ".figures",
    "cost_figure": ".figures",
    "curves_figure": ".figures",
    "faces_image": ".figures",
    "openset_threshold_figure": ".figures",
    "threshold_curve_figure": ".figures",
    "cell_rows": "facecore.recognize.prediction_rows",
    "merged_predictions": "facecore.recognize.prediction_rows",
    "prediction_filters": "facecore.recognize.prediction_rows",
    "Evaluation": "facecore.recognize.result",
}
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
