"""Compare up to six runs of one dataset on one split: a Markdown, an HTML and a JSON report.

``compare_runs(["run_a", "run_b"], out=Path("reports/ab"))`` evaluates each run (reusing its
``eval_<split>/metrics.json`` while that is newer than the checkpoint and the dataset) and writes
``report.md``, ``report.html`` (self-contained: plotly.js and thumbnails inline, works offline)
and ``comparison.json`` into ``out``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from facecore import workspace
from facecore.errors import CompareError
from facecore.evaluate.evaluation import evaluate_run
from facecore.evaluate.figures import bars_figure, confusion_figure, curves_figure, openset_figure
from facecore.evaluate.locate import cached_evaluation, resolve_run
from facecore.gallery.evaluate import cached_gallery_evaluation, evaluate_gallery
from facecore.mode import require_writable
from facecore.models.checkpoint import load_checkpoint
from facecore.recognize.openset import operating_point
from facecore.recognize.prediction_rows import predictions_by_file
from facecore.recognize.result import Evaluation
from facecore.recognize.runs import read_metrics

MAX_RUNS = 6
GALLERY_LIMIT = 60
THUMB_SIZE = 96


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
    runs = list(runs)
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
        labels.append(f"gallery:{name}")
    predictions = [predictions_by_file(e.predictions_csv) for e in evaluations]
    file_sets = {frozenset(p) for p in predictions}
    if len(file_sets) > 1:
        raise CompareError(
            f"The runs' {split} predictions cover different images (the dataset changed between "
            "evaluations); delete their eval_* folders and compare again."
        )

    first = evaluations[0]
    classes = first.classes
    pairs = list(zip(labels, evaluations, strict=True))
    rows = [summary_row(label, e) for label, e in pairs]
    per_class = {c: {label: e.per_class[c]["f1"] for label, e in pairs} for c in classes}
    disagree, all_wrong = _disagreements(labels, predictions)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"report_md": out / "report.md", "report_html": out / "report.html",
             "comparison_json": out / "comparison.json"}
    result: dict[str, Any] = {
        "dataset": first.dataset,
        "split": split,
        "n_images": first.n_images,
        "classes": classes,
        "runs": rows,
        "per_class_f1": per_class,
        "confusion_matrices": {label: e.confusion_matrix for label, e in pairs},
        "disagreements": disagree,
        "all_wrong": all_wrong,
        "evaluations": {label: e.metrics_json for label, e in pairs},
        "reused_evaluation": dict(zip(labels, reused, strict=True)),
        "files": {k: str(v.resolve()) for k, v in files.items()},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    workspace.atomic_write_text(files["report_md"], markdown_report(result))
    curves = {label: read_metrics(Path(e.run_dir)) for label, e in pairs if e.run_dir}
    sweeps = {label: e.open_set.sweep for label, e in pairs}
    workspace.atomic_write_text(
        files["report_html"],
        html_report(
            result, curves, sweeps, Path(first.dataset_path), {lb: e.classes for lb, e in pairs}
        ),
    )
    workspace.atomic_write_text(files["comparison_json"], json.dumps(result, indent=2))
    return result


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
    gallery = "gallery:"
    return " ".join(
        f"--gallery {label.removeprefix(gallery)}" if label.startswith(gallery) else f"{run_flag}{label}"
        for label in labels
    )


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


# --- Markdown -------------------------------------------------------------------------------------------


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


SUMMARY_HEADER = [
    "model", "run", "accuracy", "macro F1", "weighted F1", "FAR at threshold", "known accuracy at threshold",
    "threshold", "params (trainable / total)", "checkpoint MB", "training min", "ms/image b1", "ms/image b32",
]


def _summary_cells(r: dict[str, Any]) -> list[str]:
    return [
        r["model"], r["label"], _fmt(r["accuracy"]), _fmt(r["macro_f1"]), _fmt(r["weighted_f1"]),
        _fmt(r["far_at_threshold"]), _fmt(r["known_accuracy_at_threshold"]), _fmt(r["threshold"], ".2f"),
        f"{r['params_trainable']:,} / " + ("n/a" if r["params_total"] is None else f"{r['params_total']:,}"),
        _fmt(r["checkpoint_mb"], ".2f"),
        _fmt(r["train_minutes"], ".2f"), _fmt(r["ms_per_image_b1"], ".2f"),
        _fmt(r["ms_per_image_b32"], ".2f"),
    ]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pred_cell(p: dict[str, Any], true: str, *, md: bool) -> str:
    text = f"{p['pred']} ({p['confidence']:.2f})"
    if p["pred"] == true:
        return f"**{_md(text)}**" if md else f"<b>{html.escape(text)}</b>"
    return _md(text) if md else html.escape(text)


def markdown_report(result: dict[str, Any]) -> str:
    """The report as Markdown: summary table, per-class F1, disagreements, shared mistakes."""
    labels = [r["label"] for r in result["runs"]]
    device = result["runs"][0].get("latency_device") or "n/a"
    parts = [
        f"# Model comparison: dataset `{result['dataset']}`, {result['split']} split "
        f"({result['n_images']} images)",
        "",
        _md_table(SUMMARY_HEADER, [_summary_cells(r) for r in result["runs"]]),
        "",
        "FAR (Unknown faces accepted as someone) and known accuracy (known faces accepted and named "
        "correctly) are at each model's stored threshold, which training calibrated on the validation "
        f"split. Latency: milliseconds per image on {device}.",
        "",
        "## Per-class F1",
        "",
        _md_table(["class", *labels],
                  [[c, *(_fmt(v) for v in per.values())] for c, per in result["per_class_f1"].items()]),
        "",
    ]
    for title, key, empty in (
        ("Images where the models disagree", "disagreements", "The models agree on every image."),
        ("Images every model gets wrong", "all_wrong", "No image is misclassified by every model."),
    ):
        if key == "disagreements" and len(labels) < 2:
            continue
        rows = result[key]
        parts += [f"## {title} ({len(rows)})", ""]
        if not rows:
            parts += [empty, ""]
            continue
        parts += [
            _md_table(["file", "true", *labels],
                      [[r["file"], r["true"], *(_pred_cell(r["predictions"][lb], r["true"], md=True)
                                                for lb in labels)] for r in rows]),
            "",
        ]
    parts.append("Correct predictions are in bold; confidence (max softmax) in brackets.")
    return "\n".join(parts) + "\n"


# --- HTML -----------------------------------------------------------------------------------------------


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3} td:first-child,td:nth-child(2){text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:6px;width:200px;font-size:12px}
.card img{display:block;margin:0 auto 4px;border-radius:4px}
.ok{color:#1a7f37}.bad{color:#b42318}.note{color:#555;font-size:13px}
"""


def thumbnail_data_uri(path: Path, size: int = THUMB_SIZE) -> str | None:
    """A small JPEG of the image at ``path`` as a ``data:`` URI, or None if it cannot be read."""
    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except OSError:
        return None
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _gallery(rows: Sequence[dict[str, Any]], labels: Sequence[str], dataset_path: Path) -> str:
    cards = []
    for r in rows[:GALLERY_LIMIT]:
        uri = thumbnail_data_uri(dataset_path / r["file"])
        img = (f'<img src="{uri}" alt="{html.escape(r["file"])}" width="{THUMB_SIZE}">' if uri
               else "<div class='note'>(image missing)</div>")
        preds = "".join(
            f"<div class='{'ok' if r['predictions'][lb]['pred'] == r['true'] else 'bad'}'>"
            f"{html.escape(lb)}: {html.escape(r['predictions'][lb]['pred'])} "
            f"({r['predictions'][lb]['confidence']:.2f})</div>"
            for lb in labels
        )
        cards.append(
            f"<div class='card'>{img}<div title='{html.escape(r['file'])}'>"
            f"<b>true: {html.escape(r['true'])}</b></div>{preds}</div>"
        )
    more = (f"<p class='note'>Showing {GALLERY_LIMIT} of {len(rows)}; the full list is in report.md.</p>"
            if len(rows) > GALLERY_LIMIT else "")
    return f"<div class='grid'>{''.join(cards)}</div>{more}"


def html_report(
    result: dict[str, Any],
    curves: dict[str, list[dict[str, float]]],
    sweeps: dict[str, list[dict[str, Any]]],
    dataset_path: Path,
    matrix_classes: dict[str, list[str]] | None = None,
) -> str:
    """The report as one self-contained HTML page (plotly.js inlined once, thumbnails as data URIs).

    ``matrix_classes`` gives each confusion matrix its own rows (a gallery adds "Unknown" to a
    dataset that has no Unknown class); by default every matrix has ``result["classes"]``.
    """
    matrix_classes = matrix_classes or {}
    labels = [r["label"] for r in result["runs"]]
    first = [True]

    def fig_html(fig: Any) -> str:
        include = first[0]
        first[0] = False
        return fig.to_html(full_html=False, include_plotlyjs=include, config={"displaylogo": False})

    esc = html.escape
    table = _html_table(SUMMARY_HEADER, [[esc(c) for c in _summary_cells(r)] for r in result["runs"]])
    per_class = _html_table(
        ["class", *labels],
        [[esc(c), *(esc(_fmt(v)) for v in per.values())] for c, per in result["per_class_f1"].items()],
    )
    markers = {r["label"]: r["threshold"] for r in result["runs"]}
    sections = [
        f"<h1>Model comparison: dataset <code>{esc(result['dataset'])}</code>, {esc(result['split'])} split "
        f"({result['n_images']} images)</h1>",
        table,
        "<p class='note'>FAR (Unknown faces accepted as someone) and known accuracy (known faces accepted "
        "and named correctly) are at each model's stored threshold, calibrated on the validation split. "
        f"Latency: milliseconds per image on {esc(str(result['runs'][0].get('latency_device')))}.</p>",
        fig_html(bars_figure(result["runs"])),  # the first figure carries plotly.js: keep it first
        fig_html(curves_figure(curves)),
        "<h2>Confusion matrices</h2>",
        "<div class='grid'>",
        *(f"<div>{fig_html(confusion_figure(cm, matrix_classes.get(label, result['classes']), f'{label}: confusion matrix'))}</div>"  # noqa: E501
          for label, cm in result["confusion_matrices"].items()),
        "</div>",
        "<h2>Open set</h2>",
        fig_html(openset_figure(sweeps, markers)),
        "<h2>Per-class F1</h2>",
        per_class,
    ]
    if len(labels) > 1:
        sections += [
            f"<h2>Images where the models disagree ({len(result['disagreements'])})</h2>",
            _gallery(result["disagreements"], labels, dataset_path) if result["disagreements"]
            else "<p>The models agree on every image.</p>",
        ]
    sections += [
        f"<h2>Images every model gets wrong ({len(result['all_wrong'])})</h2>",
        _gallery(result["all_wrong"], labels, dataset_path) if result["all_wrong"]
        else "<p>No image is misclassified by every model.</p>",
    ]
    title = f"facecore comparison: {result['dataset']} ({result['split']})"
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body>{''.join(sections)}"
        f"<p class='note'>Generated by facecore at {esc(result['created_at'])}.</p></body></html>\n"
    )


__all__ = ["compare_runs", "html_report", "markdown_report", "thumbnail_data_uri"]
