"""Compare up to six runs of one dataset on one split: a Markdown, an HTML and a JSON report.

``compare_runs(["run_a", "run_b"], out=Path("reports/ab"))`` evaluates each run (reusing its
``eval_<split>/metrics.json`` while that is newer than the checkpoint and the dataset) and writes
``report.md``, ``report.html`` (self-contained: plotly.js and thumbnails inline, works offline;
:mod:`facecore.evaluate.report`) and ``comparison.json`` into ``out``. The Compare page's tables
are in :mod:`facecore.evaluate.tables`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from facecore import workspace
from facecore.errors import CompareError
from facecore.evaluate.evaluation import evaluate_run
from facecore.evaluate.locate import cached_evaluation, resolve_run
from facecore.evaluate.report import html_report, markdown_report
from facecore.gallery.evaluate import cached_gallery_evaluation, evaluate_gallery
from facecore.mode import require_writable
from facecore.models.checkpoint import load_checkpoint
from facecore.recognize.prediction_rows import predictions_by_file
from facecore.recognize.refs import RecognizerRef
from facecore.recognize.result import Evaluation
from facecore.recognize.runs import read_metrics

MAX_RUNS = 6


def compare_runs(
    runs: Sequence[str | Path],
    *,
    out: str | Path,
    split: str = "test",
    device: str = "auto",
    latency: bool = True,
    galleries: Sequence[str] = (),
) -> dict[str, Any]:
    """Evaluate ``runs`` (1 to 6, same dataset and split) on ``split`` and write the reports to ``out``.

    Runs are folders, names under models/, or checkpoint files. ``galleries`` are evaluated on the
    runs' dataset and split beside them (labelled ``gallery:NAME``). ``latency=False`` leaves the
    ms/image columns empty (n/a) unless a reused evaluation has them. Returns comparison.json's dict.
    """
    require_writable("Writing a comparison report")
    labels = _check_runs(list(runs), galleries)
    evaluations, reused = _evaluate_all(list(runs), galleries, split, device=device, latency=latency)
    labels += [str(RecognizerRef.gallery(name)) for name in galleries]
    predictions = [predictions_by_file(e.predictions_csv) for e in evaluations]
    if len({frozenset(p) for p in predictions}) > 1:
        raise CompareError(
            f"The runs' {split} predictions cover different images (the dataset changed between "
            "evaluations); delete their eval_* folders and compare again."
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"report_md": out / "report.md", "report_html": out / "report.html",
             "comparison_json": out / "comparison.json"}  # fmt: skip
    pairs = list(zip(labels, evaluations, strict=True))
    result = _comparison(pairs, predictions, reused, split, files)
    _write_reports(result, pairs, files)
    return result


def _check_runs(runs: list[str | Path], galleries: Sequence[str]) -> list[str]:
    """The runs' labels, once the count, duplicates and shared dataset are checked."""
    if not runs or len(runs) + len(galleries) > MAX_RUNS:
        raise CompareError(
            f"Compare 1 to {MAX_RUNS} runs and galleries at a time (at least one run); "
            f"{len(runs)} runs and {len(galleries)} galleries were given."
        )
    resolved = [resolve_run(r) for r in runs]
    seen: dict[Path, str] = {}
    for r, (ckpt, _) in zip(runs, resolved, strict=True):
        key = ckpt.resolve()
        if key in seen:
            raise CompareError(
                f"{str(r)!r} and {seen[key]!r} are the same checkpoint ({key}); list it once."
            )
        seen[key] = str(r)
    labels = _labels(resolved)
    _check_same_data(labels, [ckpt for ckpt, _ in resolved])
    return labels


def _evaluate_all(
    runs: list[str | Path], galleries: Sequence[str], split: str, *, device: str, latency: bool
) -> tuple[list[Evaluation], list[bool]]:
    """Each run's, then each gallery's evaluation (reused while fresh), and whether it was reused."""
    evaluations, reused = [], []
    for r in runs:
        cached = cached_evaluation(r, split, need_latency=latency)
        reused.append(cached is not None)
        evaluations.append(cached or evaluate_run(r, split=split, device=device, latency=latency))
    dataset = evaluations[0].dataset
    for name in galleries:
        cached = cached_gallery_evaluation(name, dataset, split)
        reused.append(cached is not None)
        evaluations.append(cached or evaluate_gallery(name, dataset, split=split, latency=latency))
    return evaluations, reused


def _comparison(
    pairs: list[tuple[str, Evaluation]],
    predictions: list[dict[str, dict[str, Any]]],
    reused: list[bool],
    split: str,
    files: dict[str, Path],
) -> dict[str, Any]:
    """comparison.json's dict."""
    labels = [label for label, _ in pairs]
    first = pairs[0][1]
    disagree, all_wrong = _disagreements(labels, predictions)
    return {
        "dataset": first.dataset,
        "split": split,
        "n_images": first.n_images,
        "classes": first.classes,
        "runs": [summary_row(label, e) for label, e in pairs],
        "per_class_f1": {c: {label: e.per_class[c]["f1"] for label, e in pairs} for c in first.classes},
        "confusion_matrices": {label: e.confusion_matrix for label, e in pairs},
        "disagreements": disagree,
        "all_wrong": all_wrong,
        "evaluations": {label: e.metrics_json for label, e in pairs},
        "reused_evaluation": dict(zip(labels, reused, strict=True)),
        "files": {k: str(v.resolve()) for k, v in files.items()},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _write_reports(
    result: dict[str, Any], pairs: list[tuple[str, Evaluation]], files: dict[str, Path]
) -> None:
    """report.md, report.html and comparison.json, each written atomically."""
    workspace.atomic_write_text(files["report_md"], markdown_report(result))
    curves = {label: read_metrics(Path(e.run_dir)) for label, e in pairs if e.run_dir}
    sweeps = {label: e.open_set.sweep for label, e in pairs}
    dataset_path = Path(pairs[0][1].dataset_path)
    matrix_classes = {label: e.classes for label, e in pairs}
    workspace.atomic_write_text(
        files["report_html"], html_report(result, curves, sweeps, dataset_path, matrix_classes)
    )
    workspace.atomic_write_text(files["comparison_json"], json.dumps(result, indent=2))


# --- gathering ---------------------------------------------------------------------------------------


def _labels(resolved: Sequence[tuple[Path, Path]]) -> list[str]:
    """A unique label per run: its folder name (``:last`` etc. for a checkpoint other than best.pt)."""
    labels = [d.name if c.name == "best.pt" else f"{d.name}:{c.stem}" for c, d in resolved]
    labels = [f"{d.parent.name}/{lb}" if labels.count(lb) > 1 else lb
              for lb, (_, d) in zip(labels, resolved, strict=True)]
    return [f"{lb} #{i + 1}" if labels.count(lb) > 1 else lb for i, lb in enumerate(labels)]


def _check_same_data(labels: Sequence[str], checkpoints: Sequence[Path]) -> None:
    """Raise :class:`FacecoreError` naming the runs unless all share dataset, split seed and classes."""
    info = []
    for ckpt_path in checkpoints:
        ckpt = load_checkpoint(ckpt_path)
        ds = ckpt.get("dataset") or {}
        name = ds.get("name") or ckpt["config"].get("dataset")
        info.append((name, ds.get("split_seed"), list(ckpt["classes"])))
    for what, idx in (("dataset", 0), ("split seed", 1), ("classes", 2)):
        values = [str(i[idx]) for i in info]
        if len(set(values)) > 1:
            listing = ", ".join(f"{label}: {v}" for label, v in zip(labels, values, strict=True))
            why = " (so their split images differ)" if what == "split seed" else ""
            raise CompareError(
                f"Runs can only be compared on the same dataset and split, but their {what} differs{why}: "
                f"{listing}."
            )


def summary_row(label: str, e: Evaluation) -> dict[str, Any]:
    """One run's numbers for the comparison table and bar charts, from its evaluation ``e``."""
    at = e.open_set.at_model_threshold
    lat = e.latency_ms or {}
    secs = e.train_seconds
    return {
        "label": label,
        "run": e.run,
        "model": e.model,
        "epoch": e.epoch,
        "accuracy": e.accuracy,
        "macro_f1": e.macro_f1,
        "weighted_f1": e.weighted_f1,
        "threshold": e.open_set.threshold_in_model,
        "far_at_threshold": at.get("false_accept_rate"),
        "known_accuracy_at_threshold": at.get("known_accuracy"),
        "params_trainable": e.params_trainable,
        "params_total": e.params_total,
        "checkpoint_mb": round(e.checkpoint_bytes / 1e6, 2),
        "train_minutes": round(secs / 60, 2) if secs is not None else None,
        "ms_per_image_b1": lat.get("batch1"),
        "ms_per_image_b32": lat.get("batch32"),
        "latency_device": e.device,
    }


def _disagreements(
    labels: Sequence[str], predictions: Sequence[dict[str, dict[str, Any]]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Images on which the runs' predictions differ, and images every run gets wrong."""
    disagree, wrong = [], []
    for f in sorted(predictions[0]):
        preds = {label: {"pred": p[f]["pred"], "confidence": p[f]["confidence"]}
                 for label, p in zip(labels, predictions, strict=True)}
        row = {"file": f, "true": predictions[0][f]["true"], "predictions": preds}
        if len({v["pred"] for v in preds.values()}) > 1:
            disagree.append(row)
        elif next(iter(preds.values()))["pred"] != row["true"]:
            wrong.append(row)
    return disagree, wrong


__all__ = ["MAX_RUNS", "compare_runs", "summary_row"]
