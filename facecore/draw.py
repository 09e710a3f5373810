"""Face boxes and their labels drawn on numpy images: the one drawer of live video, webcam
enrollment and figures.

Colours are always given as **RGB** triples; ``order`` says how the image stores its channels
(``"RGB"``, as facecore's images, or ``"BGR"``, as OpenCV and PyAV video frames), and the drawer
writes each colour in that order. Images are drawn on in place (uint8, H x W x 3, contiguous).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

#: an RGB colour
Colour = tuple[int, int, int]
ColourOrder = Literal["RGB", "BGR"]

WHITE: Colour = (255, 255, 255)
#: the default box colour (a known face in live video)
GREEN: Colour = (60, 200, 60)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def in_order(colour: Colour, order: ColourOrder) -> Colour:
    """``colour`` (RGB) as the image stores it: reversed for ``"BGR"``."""
    if order not in ("RGB", "BGR"):
        raise ValueError(f"order must be 'RGB' or 'BGR', not {order!r}.")
    r, g, b = (int(v) for v in colour)
    return (b, g, r) if order == "BGR" else (r, g, b)


def draw_box(
    image: np.ndarray, box: Sequence[int], colour: Colour = GREEN, *, order: ColourOrder, width: int = 2
) -> np.ndarray:
    """The outline of ``box`` ``(x, y, w, h)``, ``width`` pixels wide; returns ``image``."""
    x, y, w, h = (int(v) for v in box)
    cv2.rectangle(image, (x, y), (x + w, y + h), in_order(colour, order), int(width))
    return image


def draw_face(
    image: np.ndarray,
    box: Sequence[int],
    labels: Sequence[str] = (),
    colours: Sequence[Colour] = (GREEN,),
    *,
    order: ColourOrder,
    width: int = 2,
    scale: float = 0.55,
    text: Colour = WHITE,
) -> np.ndarray:
    """A box around a face and one filled label per line of ``labels`` above it (below when
    there is no room); returns ``image``.

    ``colours``: RGB, the box's is the first, label ``i`` is filled with ``colours[i]`` (the last
    one when there are fewer). ``width``: the box's line width; ``scale``: the font scale (a label
    is ``40 * scale`` pixels high); ``text``: the labels' text colour.
    """
    colours = list(colours) or [GREEN]
    draw_box(image, box, colours[0], order=order, width=width)
    x, y, _, h = (int(v) for v in box)
    line_h = round(40 * scale)
    pad, rise = round(line_h * 0.18), round(line_h * 0.27)
    thick = max(1, round(scale * 1.5))
    top = y - line_h * len(labels)
    if top < 0:
        top = y + h
    ink = in_order(text, order)
    for i, label in enumerate(labels):
        (tw, _), _ = cv2.getTextSize(label, _FONT, scale, thick)
        y0 = top + i * line_h
        fill = in_order(colours[min(i, len(colours) - 1)], order)
        cv2.rectangle(image, (x, y0), (x + tw + 2 * pad, y0 + line_h), fill, -1)
        cv2.putText(image, label, (x + pad, y0 + line_h - rise), _FONT, scale, ink, thick, cv2.LINE_AA)
    return image


__all__ = ["GREEN", "WHITE", "Colour", "ColourOrder", "draw_box", "draw_face", "in_order"]
