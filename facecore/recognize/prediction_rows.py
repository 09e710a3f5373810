"""An evaluation's ``predictions.csv``: one row per image, written by runs and galleries alike,
and read back by the comparison report and the Compare page.

Columns: ``file, true, pred, confidence, top1_label, top1_prob, top2_label, top2_prob,
top3_label, top3_prob, correct, accepted_at_threshold`` (probabilities with six decimals; the two
flags as 0/1). A missing top-k (fewer than three classes) is written as empty cells.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facecore import workspace

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["file", "true", "pred", "confidence"]
COLUMNS += [c for k in (1, 2, 3) for c in (f"top{k}_label", f"top{k}_prob")]
COLUMNS += ["correct", "accepted_at_threshold"]
#: Columns read as text even when every value looks like a number (a class named "7").
LABEL_COLUMNS = ["file", "true", "pred", "top1_label", "top2_label", "top3_label"]


@dataclass(frozen=True)
class PredictionRow:
    """One image's prediction: its truth, the answer, its confidence and the top three guesses."""

    file: str
    true: str
    pred: str
    confidence: float
    top: Sequence[tuple[str, float]]
    correct: bool
    accepted: bool

    def cells(self) -> list[Any]:
        row: list[Any] = [self.file, self.true, self.pred, f"{self.confidence:.6f}"]
        for k in range(3):
            row += [self.top[k][0], f"{self.top[k][1]:.6f}"] if k < len(self.top) else ["", ""]
        return row + [int(self.correct), int(self.accepted)]


def write_predictions(path: Path, rows: Iterable[PredictionRow]) -> None:
    """Write ``predictions.csv`` atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(r.cells() for r in rows)
    workspace.atomic_write_text(path, buf.getvalue())


def read_predictions(path: str | Path) -> pd.DataFrame:
    """``predictions.csv`` as a DataFrame (labels as text, probabilities as floats)."""
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, dtype=dict.fromkeys(LABEL_COLUMNS, str))


def predictions_by_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{file: {"true", "pred", "confidence"}}``: what the comparison matches images by."""
    df = read_predictions(path)
    return {
        r.file: {"true": r.true, "pred": r.pred, "confidence": float(r.confidence)}
        for r in df.itertuples(index=False)
    }


def merged_predictions(paths: dict[str, str | Path]) -> pd.DataFrame:
    """One row per image that every evaluation has: ``file``, ``true`` and per label ``pred:L``,
    ``conf:L`` and ``acc:L`` (accepted at the model's threshold), sorted by file."""
    merged = None
    for label, path in paths.items():
        df = read_predictions(path)[["file", "true", "pred", "confidence", "accepted_at_threshold"]]
        names = {"pred": "pred", "confidence": "conf", "accepted_at_threshold": "acc"}
        df = df.rename(columns={col: f"{short}:{label}" for col, short in names.items()})
        merged = df if merged is None else merged.merge(df.drop(columns="true"), on="file", how="inner")
    if merged is None:
        raise ValueError("merged_predictions needs at least one predictions file")
    return merged.sort_values("file", ignore_index=True)


def cell_rows(path: str | Path, true: str, pred: str) -> pd.DataFrame:
    """The rows of one confusion-matrix cell (truth ``true``, predicted ``pred``), least confident first."""
    df = read_predictions(path)
    return df[(df["true"] == true) & (df["pred"] == pred)].sort_values("confidence")


def prediction_filters(merged: pd.DataFrame, labels: Sequence[str]) -> dict[str, pd.Series]:
    """Masks over :func:`merged_predictions` rows: ``wrong`` (some model wrong) and ``disagree``."""
    preds = merged[[f"pred:{label}" for label in labels]]
    return {"wrong": preds.ne(merged["true"], axis=0).any(axis=1), "disagree": preds.nunique(axis=1) > 1}
