"""Plotly figures of a dataset, for the dashboard: built from plain counts, no file is read."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go

from facecore.constants import SPLITS

#: A colour per split, and for faces in no split yet.
SPLIT_COLOURS = {"train": "#4C78A8", "val": "#F58518", "test": "#54A24B", "unsplit": "#BAB0AC"}


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


__all__ = ["SPLIT_COLOURS", "balance_figure"]
