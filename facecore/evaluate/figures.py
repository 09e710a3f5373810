"""Plotly figures of datasets, runs and evaluations, shared by the HTML report and the dashboard.

Each builder takes plain data (a dataset's counts per person and split, the rows of
``metrics.csv``, an evaluation's confusion matrix or open-set sweep, a gallery's calibration) and
returns a :class:`plotly.graph_objects.Figure`; none of them reads files. Runs keep one colour
each across figures when passed in the same order; splits keep theirs (:data:`SPLIT_COLOURS`).
:func:`faces_image` draws numbered face boxes on a photo held in memory and returns the new image
as an array.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, qualitative
from plotly.subplots import make_subplots

from facecore.constants import SPLITS
from facecore.draw import draw_face
from facecore.recognize.openset import operating_point

PALETTE: list[str] = list(qualitative.Plotly)
METRIC_LABELS = {
    "accuracy": "accuracy", "macro_f1": "macro F1", "weighted_f1": "weighted F1",
    "known_accuracy": "known accuracy", "false_accept_rate": "false-accept rate",
}
#: A colour per split, and for faces in no split yet.
SPLIT_COLOURS = {"train": "#4C78A8", "val": "#F58518", "test": "#54A24B", "unsplit": "#BAB0AC"}


def run_color(i: int) -> str:
    """The colour of the ``i``-th run."""
    return PALETTE[i % len(PALETTE)]


def curves_figure(runs_metrics: Mapping[str, Sequence[Mapping[str, float]]]) -> go.Figure:
    """Per-epoch loss (train solid, val dashed), val accuracy and val macro F1 of every run, shared axes.

    ``runs_metrics`` maps a run label to its ``metrics.csv`` rows (``facecore.recognize.runs.read_metrics``).
    """
    fig = make_subplots(
        rows=1, cols=3, horizontal_spacing=0.07,
        subplot_titles=("loss (train solid, validation dashed)", "validation accuracy",
                        "validation macro F1"),
    )
    for i, (name, rows) in enumerate(runs_metrics.items()):
        color = run_color(i)
        epochs = [r["epoch"] for r in rows]
        series = [
            (1, "train_loss", "train loss", "solid", True),
            (1, "val_loss", "val loss", "dash", False),
            (2, "val_acc", "val accuracy", "solid", False),
            (3, "val_f1", "val macro F1", "solid", False),
        ]
        for col, key, what, dash, legend in series:
            fig.add_trace(
                go.Scatter(
                    x=epochs, y=[r.get(key) for r in rows], mode="lines+markers", name=name,
                    legendgroup=name, showlegend=legend, line={"color": color, "dash": dash},
                    hovertemplate=f"{name}<br>epoch %{{x}}<br>{what} %{{y:.4f}}<extra></extra>",
                ),
                row=1, col=col,
            )
    dtick = 1 if _max_epoch(runs_metrics) <= 20 else None
    fig.update_xaxes(title_text="epoch", rangemode="tozero", dtick=dtick)
    fig.update_yaxes(rangemode="tozero", col=1)
    fig.update_yaxes(range=[0, 1.02], col=2)
    fig.update_yaxes(range=[0, 1.02], col=3)
    fig.update_layout(title="Training curves", height=380, margin={"t": 70, "b": 40}, legend_title_text="run")
    return fig


def _max_epoch(runs_metrics: Mapping[str, Sequence[Mapping[str, float]]]) -> int:
    return max((int(r["epoch"]) for rows in runs_metrics.values() for r in rows), default=0)


def confusion_figure(
    cm: Sequence[Sequence[int]] | np.ndarray, classes: Sequence[str], title: str = ""
) -> go.Figure:
    """Heatmap of a confusion matrix (rows: true class, columns: predicted), counts written in the cells.

    Colour is the share of the true class's images (the row), so small classes stay readable.
    """
    counts = np.asarray(cm, dtype=np.int64).reshape(len(classes), len(classes))
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    fig = go.Figure(
        go.Heatmap(
            z=share, x=list(classes), y=list(classes), text=counts, texttemplate="%{text}",
            colorscale="Blues", zmin=0, zmax=1, colorbar={"title": "share of row", "tickformat": ".0%"},
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text} images (%{z:.0%} of the true class)"
            "<extra></extra>",
        )
    )
    side = max(320, 60 + 48 * len(classes))
    fig.update_layout(
        title=title or "Confusion matrix", width=side + 160, height=side + 80,
        xaxis={"title": "predicted", "tickangle": -35, "type": "category"},
        yaxis={"title": "true", "autorange": "reversed", "type": "category"},
        margin={"t": 60, "l": 10, "b": 10},
    )
    return fig


def openset_figure(
    sweeps: Mapping[str, Sequence[Mapping[str, Any]]], markers: Mapping[str, float] | None = None
) -> go.Figure:
    """Known accuracy against false-accept rate over thresholds, one curve per run.

    ``sweeps`` maps a run label to its ``facecore.recognize.openset.sweep`` rows; ``markers`` (optional)
    maps a label to the threshold its model uses, drawn as a large point on its curve.
    """
    fig = go.Figure()
    empty = True
    for i, (name, rows) in enumerate(sweeps.items()):
        pts = [r for r in rows
               if r.get("false_accept_rate") is not None and r.get("known_accuracy") is not None]
        if not pts:
            continue
        empty = False
        color = run_color(i)
        fig.add_trace(
            go.Scatter(
                x=[r["false_accept_rate"] for r in pts], y=[r["known_accuracy"] for r in pts],
                customdata=[r["threshold"] for r in pts], mode="lines+markers", name=name,
                legendgroup=name, line={"color": color, "shape": "hv"}, marker={"size": 4},
                hovertemplate=f"{name}<br>threshold %{{customdata:.2f}}<br>false-accept rate %{{x:.3f}}"
                "<br>known accuracy %{y:.3f}<extra></extra>",
            )
        )
        if markers and name in markers:
            at = operating_point(pts, markers[name])
            fig.add_trace(
                go.Scatter(
                    x=[at["false_accept_rate"]], y=[at["known_accuracy"]], mode="markers", legendgroup=name,
                    showlegend=False, marker={"color": color, "size": 13, "symbol": "diamond",
                                              "line": {"color": "black", "width": 1}},
                    hovertemplate=f"{name}: model threshold {markers[name]:.2f}<br>false-accept rate "
                    "%{x:.3f}<br>known accuracy %{y:.3f}<extra></extra>",
                )
            )
    if empty:
        fig.add_annotation(text="no Unknown faces in this split: the false-accept rate is undefined",
                           showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(
        title="Open set: known faces named correctly vs Unknown faces accepted (diamond: model threshold)",
        xaxis={"title": "false-accept rate (Unknown faces accepted)", "range": [-0.02, 1.02]},
        yaxis={"title": "known accuracy (accepted and correct)", "range": [-0.02, 1.02]},
        height=420, legend_title_text="run",
    )
    return fig


def bars_figure(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = ("accuracy", "macro_f1", "weighted_f1"),
    label_key: str = "label",
) -> go.Figure:
    """Grouped bars: one group per metric, one bar per run (``rows``: dicts of ``label_key`` and metrics)."""
    fig = go.Figure()
    names = [METRIC_LABELS.get(m, m) for m in metrics]
    for i, row in enumerate(rows):
        values = [row.get(m) for m in metrics]
        fig.add_trace(
            go.Bar(
                x=names, y=values, name=str(row.get(label_key, i)), marker_color=run_color(i),
                text=[f"{v:.3f}" if v is not None else "" for v in values], textposition="outside",
                hovertemplate=f"{row.get(label_key, i)}<br>%{{x}} %{{y:.4f}}<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group", title="Accuracy and F1", yaxis={"range": [0, 1.1], "title": "score"},
        height=380, legend_title_text="run",
    )
    return fig


def confusion_select_figure(
    cm: Sequence[Sequence[int]] | np.ndarray, classes: Sequence[str], title: str = ""
) -> go.Figure:
    """:func:`confusion_figure` whose non-empty cells can be clicked (a dashboard selection event).

    Plotly heatmaps report no selection, so an invisible marker sits on every non-empty cell:
    clicking a cell selects its marker, whose ``x`` is the predicted class and ``y`` the true one.
    """
    fig = confusion_figure(cm, classes, title)
    counts = np.asarray(cm, dtype=np.int64).reshape(len(classes), len(classes))
    fig.data[0].hoverinfo = "skip"
    true_idx, pred_idx = np.nonzero(counts)
    side = max(320, 60 + 48 * len(classes))
    fig.add_trace(
        go.Scatter(
            x=[classes[j] for j in pred_idx], y=[classes[i] for i in true_idx],
            customdata=[int(counts[i, j]) for i, j in zip(true_idx, pred_idx, strict=True)],
            mode="markers", showlegend=False,
            marker={"symbol": "square", "size": max(10, int(0.6 * (side - 140) / len(classes))),
                    "color": "rgba(0,0,0,0)"},
            selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 1}},
            hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata} images (click to show them)"
            "<extra></extra>",
        )
    )
    fig.update_layout(clickmode="event+select", hovermode="closest", dragmode=False)
    return fig


def cost_figure(rows: Sequence[Mapping[str, Any]], label_key: str = "label") -> go.Figure:
    """What each run costs, in a 2 x 2 grid: parameters in millions (trainable solid, total light),
    checkpoint MB, training minutes and milliseconds per image at batch 1. ``rows``: dicts with
    ``label_key``, ``params_trainable``, ``params_total``, ``checkpoint_mb``, ``train_minutes``
    and ``ms_per_image_b1`` (None where unknown).
    """
    panels = (
        ("parameters (M): trainable, total", None),
        ("checkpoint (MB)", "checkpoint_mb"),
        ("training (minutes)", "train_minutes"),
        ("ms per image (batch 1)", "ms_per_image_b1"),
    )
    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.12, vertical_spacing=0.2,
                        subplot_titles=[t for t, _ in panels])
    labels = [str(r.get(label_key, i)) for i, r in enumerate(rows)]
    colors = [run_color(i) for i in range(len(rows))]
    for key, opacity in (("params_total", 0.35), ("params_trainable", 1.0)):
        values = [r[key] / 1e6 if r.get(key) is not None else None for r in rows]
        fig.add_trace(
            go.Bar(x=labels, y=values, marker_color=colors, opacity=opacity, showlegend=False,
                   text=[f"{v:.2f}" if v is not None else "" for v in values], textposition="outside",
                   hovertemplate=f"%{{x}}<br>{key.split('_')[1]} parameters %{{y:.3f}} M<extra></extra>"),
            row=1, col=1,
        )
    _headroom(fig, [r["params_total"] / 1e6 for r in rows if r.get("params_total") is not None], 1, 1)
    for i, (title, key) in enumerate(panels[1:], start=1):
        values = [r.get(key) for r in rows]
        fig.add_trace(
            go.Bar(x=labels, y=values, marker_color=colors, showlegend=False,
                   text=[f"{v:.2f}" if v is not None else "n/a" for v in values], textposition="outside",
                   hovertemplate=f"%{{x}}<br>{title} %{{y:.3f}}<extra></extra>"),
            row=1 + i // 2, col=1 + i % 2,
        )
        _headroom(fig, [v for v in values if v is not None], 1 + i // 2, 1 + i % 2)
    fig.update_layout(barmode="overlay", title="Size and speed", height=460, margin={"t": 80, "b": 40})
    return fig


def _headroom(fig: go.Figure, values: Sequence[float], row: int, col: int) -> None:
    """Y axis from 0 to a quarter above the tallest bar, so the value written above it fits."""
    fig.update_yaxes(range=[0, 1.25 * max([*values, 0.0]) or 1.0], row=row, col=col)


def openset_threshold_figure(
    sweeps: Mapping[str, Sequence[Mapping[str, Any]]],
    threshold: float,
    markers: Mapping[str, float] | None = None,
) -> go.Figure:
    """:func:`openset_figure` plus each run's operating point at ``threshold`` (a large circle).

    The diamonds stay at each model's own threshold (``markers``), so the two can be compared.
    """
    fig = openset_figure(sweeps, markers)
    for i, (name, rows) in enumerate(sweeps.items()):
        pts = [r for r in rows
               if r.get("false_accept_rate") is not None and r.get("known_accuracy") is not None]
        if not pts:
            continue
        at = operating_point(pts, threshold)
        fig.add_trace(
            go.Scatter(
                x=[at["false_accept_rate"]], y=[at["known_accuracy"]], mode="markers", legendgroup=name,
                showlegend=False, marker={"color": run_color(i), "size": 16, "symbol": "circle-open",
                                          "line": {"width": 3}},
                hovertemplate=f"{name} at threshold {threshold:.2f}<br>false-accept rate %{{x:.3f}}"
                "<br>known accuracy %{y:.3f}<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"Open set at threshold {threshold:.2f} (circle); diamond: each model's own threshold"
    )
    return fig


def faces_image(image_rgb: np.ndarray, boxes: Sequence[Sequence[int]], labels: Sequence[str]) -> np.ndarray:
    """A copy of ``image_rgb`` with each box ``(x, y, w, h)`` drawn and its label written above it
    (:func:`facecore.draw.draw_face`, one palette colour per face, sized to the photo)."""
    img = np.array(image_rgb, dtype=np.uint8, order="C", copy=True)
    side = max(img.shape[:2])
    width = max(2, round(side / 300))
    scale = max(0.5, side / 1300)  # a label about side / 32 pixels high
    for i, (box, text) in enumerate(zip(boxes, labels, strict=True)):
        colour = hex_to_rgb(PALETTE[i % len(PALETTE)])
        draw_face(img, box, [text], [colour], order="RGB", width=width, scale=scale)
    return img


def threshold_curve_figure(
    rows: Sequence[Mapping[str, Any]], threshold: float, *, target_far: float | None = None, title: str = ""
) -> go.Figure:
    """False-accept rate and known faces accepted against the threshold, with the operating point.

    ``rows``: :func:`facecore.recognize.openset.sweep` rows (a gallery's calibration); only the range where
    either rate changes is drawn.
    """
    pts = [r for r in rows if r.get("false_accept_rate") is not None or r.get("known_accepted") is not None]
    moving = [
        r for r in pts if 0 < (r.get("false_accept_rate") or 0) < 1 or 0 < (r.get("known_accepted") or 0) < 1
    ]
    if moving:
        lo = max(0.0, float(moving[0]["threshold"]) - 0.05)
        hi = min(1.0, float(moving[-1]["threshold"]) + 0.05)
        pts = [r for r in pts if lo <= float(r["threshold"]) <= hi]
    fig = go.Figure()
    for key, name, color in (
        ("false_accept_rate", "strangers accepted (false-accept rate)", "#d62728"),
        ("known_accepted", "enrolled people's faces accepted", "#1f77b4"),
    ):
        if any(r.get(key) is not None for r in pts):
            fig.add_trace(
                go.Scatter(
                    x=[r["threshold"] for r in pts],
                    y=[r.get(key) for r in pts],
                    mode="lines",
                    name=name,
                    line={"color": color, "shape": "hv"},
                    hovertemplate="threshold %{x:.3f}<br>" + name + " %{y:.3f}<extra></extra>",
                )
            )
    fig.add_vline(x=threshold, line_dash="dash", annotation_text=f"threshold {threshold:.3f}")
    if target_far is not None:
        fig.add_hline(
            y=target_far,
            line_dash="dot",
            line_color="#d62728",
            annotation_text=f"target {target_far:.1%}",
            annotation_position="bottom left",
        )
    fig.update_layout(
        title=title or "Threshold calibration",
        height=360,
        xaxis={"title": "threshold (cosine similarity to the best-matching person)"},
        yaxis={"title": "share of faces", "range": [-0.02, 1.02]},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def balance_figure(counts: Mapping[str, Mapping[str, int]]) -> go.Figure:
    """Images per person, stacked by split (``counts``: :meth:`FaceDataset.counts`)."""
    people = list(counts)
    fig = go.Figure(
        [
            go.Bar(
                name=split, x=people, y=[counts[p][split] for p in people], marker_color=SPLIT_COLOURS[split]
            )
            for split in (*SPLITS, "unsplit")
            if any(counts[p][split] for p in people)
        ]
    )
    fig.update_layout(
        barmode="stack",
        height=340,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title="Class balance: images per person",
        yaxis_title="images",
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right", "traceorder": "normal"},
    )
    return fig


__all__ = [
    "SPLIT_COLOURS", "balance_figure", "bars_figure", "confusion_figure", "confusion_select_figure",
    "cost_figure", "curves_figure", "faces_image", "openset_figure", "openset_threshold_figure",
    "run_color", "threshold_curve_figure",
]  # fmt: skip
