"""A comparison written for people: Markdown (summary table, per-class F1, the images the models
disagree on or all get wrong) and one self-contained HTML page (plotly.js inlined once, thumbnails
as data URIs, works offline)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from facecore.evaluate.figures import bars_figure, confusion_figure, curves_figure, openset_figure

GALLERY_LIMIT = 60
THUMB_SIZE = 96


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


__all__ = ["html_report", "markdown_report", "thumbnail_data_uri"]
