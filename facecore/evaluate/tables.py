"""The Compare page's tables: the metrics table with each row's best value, the operating points at
a chosen threshold, short column names, and runs and galleries as command-line arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from facecore.evaluate.compare import summary_row
from facecore.recognize.openset import operating_point
from facecore.recognize.refs import RecognizerRef
from facecore.recognize.result import Evaluation

#: Rows of the metrics table: (row name, summary_row key, format, which value is best).
TABLE_ROWS = (
    ("accuracy", "accuracy", "{:.3f}", max),
    ("macro F1", "macro_f1", "{:.3f}", max),
    ("weighted F1", "weighted_f1", "{:.3f}", max),
    ("false-accept rate at threshold", "far_at_threshold", "{:.3f}", min),
    ("threshold", "threshold", "{:.2f}", None),
    ("trainable parameters", "params_trainable", "{:,}", None),
    ("total parameters", "params_total", "{:,}", None),
    ("checkpoint size (MB)", "checkpoint_mb", "{:.1f}", min),
    ("training time (minutes)", "train_minutes", "{:.2f}", min),
    ("ms per image (batch 1)", "ms_per_image_b1", "{:.2f}", min),
    ("ms per image (batch 32)", "ms_per_image_b32", "{:.2f}", min),
)


def metrics_table(evals: dict[str, Evaluation], short: dict[str, str]) -> tuple[Any, Any]:
    """``(text, best)``: one column per run (``short`` names), one row per metric, per-class F1
    after the F1 rows; ``best`` marks the best value of each row that has one (True cells), where
    the runs differ."""
    import pandas as pd

    rows = {label: summary_row(label, e) for label, e in evals.items()}
    classes = next(iter(evals.values())).classes
    spec = []
    if any(short[label] != label for label in evals):
        spec.append(("run", "label", "{}", None))
    if any(short[label] != e.model for label, e in evals.items()):
        spec.append(("model", "model", "{}", None))
    spec += [*TABLE_ROWS[:3], *((f"F1 {c}", f"f1:{c}", "{:.3f}", max) for c in classes), *TABLE_ROWS[3:]]
    for label, e in evals.items():
        rows[label].update({f"f1:{c}": e.per_class[c]["f1"] for c in classes})
    text = pd.DataFrame(index=[name for name, *_ in spec], columns=[short[label] for label in evals])
    best = pd.DataFrame(False, index=text.index, columns=text.columns)
    for name, key, fmt, pick in spec:
        values = [rows[label][key] for label in evals]
        text.loc[name] = ["n/a" if v is None else fmt.format(v) for v in values]
        known = [v for v in values if v is not None]
        if pick is not None and len(set(known)) > 1:
            best.loc[name] = [v == pick(known) for v in values]
    return text, best


def operating_points(evals: dict[str, Evaluation], threshold: float) -> list[dict[str, Any]]:
    """Each evaluation's open-set figures at ``threshold`` beside its own threshold."""
    out = []
    for label, e in evals.items():
        at = operating_point(e.open_set.sweep, threshold)
        out.append(
            {
                "run": label,
                "own threshold": float(e.open_set.threshold_in_model),
                "known accuracy": at["known_accuracy"],
                "known faces accepted": at["known_accepted"],
                "false accepts": at["false_accept_rate"],
                "Unknown rejected": at["unknown_rejected"],
            }
        )
    return out


def short_names(evals: dict[str, Evaluation]) -> dict[str, str]:
    """A short name per run: its model when the models differ, else the run name."""
    models = [e.model for e in evals.values()]
    unique = len(set(models)) == len(models)
    return {label: (e.model if unique else label) for label, e in evals.items()}


def cli_names(labels: Sequence[str], run_flag: str = "") -> str:
    """Runs and galleries (``gallery:NAME`` labels) as command-line arguments."""
    refs = [RecognizerRef.parse(label) for label in labels]
    return " ".join(f"--gallery {ref.name}" if ref.is_gallery else f"{run_flag}{ref}" for ref in refs)


__all__ = ["TABLE_ROWS", "cli_names", "metrics_table", "operating_points", "short_names"]
