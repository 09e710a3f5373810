"""What live video shows on its frames: each face's box with one label per model, and the stats
panel in the top-left corner. Frames are **BGR** (as PyAV gives them); boxes and labels are drawn
by the shared :func:`facecore.draw.draw_face`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facecore.draw import GREEN, WHITE, Colour, draw_face, in_order
from facecore.live.result import LiveResult
from facecore.live.stats import LiveStats

if TYPE_CHECKING:
    from facecore.live.addme import AddMe

#: Display names for the three compared models (the labels drawn on the video).
SHORT_NAMES = {
    "resnet50_pretrained": "R50 pretrained",
    "resnet50_scratch": "R50 scratch",
    "custom_cnn": "CNN",
}
KNOWN: Colour = GREEN  # RGB
UNKNOWN: Colour = (255, 150, 0)
_PANEL: Colour = (30, 30, 30)
#: how long the panel still shows how a finished "Add me" went
_ADD_ME_SHOWN_S = 4.0


def draw_faces(frame_bgr: np.ndarray, result: LiveResult | None, *, many: bool) -> None:
    """Each face of ``result`` boxed, with a label per model (named with ``many`` models)."""
    for face in result.faces if result else []:
        lines = [
            (f"{SHORT_NAMES.get(p.model, p.model)} " if many else "") + f"{p.label} {p.confidence:.0%}"
            for p in face.predictions
        ]
        colours = [UNKNOWN if p.unknown else KNOWN for p in face.predictions]
        draw_face(frame_bgr, face.box, lines, colours, order="BGR")


def panel_lines(stats: LiveStats, add_me: AddMe | None, now: float) -> list[str]:
    """The panel's lines: rates, timings, the last error, and a running (or just ended) Add me."""
    lines = [f"{stats.video_fps:.1f} fps | recognition {stats.recognition_fps:.1f}/s"]
    timing = [f"det {stats.detect_ms:.0f} ms"] + [
        f"{SHORT_NAMES.get(n, n)} {ms:.0f} ms" for n, ms in stats.inference_ms.items()
    ]
    lines.append(" | ".join(timing))
    if stats.error:
        lines.append(stats.error[:70])
    if add_me is not None:
        progress = add_me.progress()
        if not progress.finished or now - add_me.started - progress.seconds < _ADD_ME_SHOWN_S:
            lines.append(progress.line()[:70])
    return lines


def draw_panel(image_bgr: np.ndarray, lines: Sequence[str]) -> None:
    """White text on a dark box in the top-left corner."""
    font, scale, thick, line_h = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1, 20
    width = max((cv2.getTextSize(t, font, scale, thick)[0][0] for t in lines), default=0)
    box = (width + 12, line_h * len(lines) + 8)
    cv2.rectangle(image_bgr, (0, 0), box, in_order(_PANEL, "BGR"), -1)
    ink = in_order(WHITE, "BGR")
    for i, text in enumerate(lines):
        cv2.putText(image_bgr, text, (6, 19 + i * line_h), font, scale, ink, thick, cv2.LINE_AA)


__all__ = ["SHORT_NAMES", "draw_faces", "draw_panel", "panel_lines"]
