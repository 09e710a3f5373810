"""Video files and cameras without a browser: :func:`run_video`, the engine of
``python -m facecore live VIDEO_OR_CAMERA``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2

from facecore.live.video import VideoSink, open_video

if TYPE_CHECKING:
    from facecore.live.recognizer import LiveRecognizer


def run_video(
    source: str | int,
    recognizer: LiveRecognizer,
    *,
    out: str | Path | None = None,
    every_frame: bool = False,
    realtime: bool | None = None,
    max_seconds: float | None = None,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Recognise faces in a video file or camera, print a stats line per second, return a summary.

    Frames go through :meth:`LiveRecognizer.process` as from a camera. A file is paced at its
    own frame rate (``realtime``, default for files; cameras pace themselves) so the figures
    match a live camera; ``every_frame`` instead recognises each frame before the next one
    (:meth:`~LiveRecognizer.recognize`, for an offline annotated copy). ``out``: write the
    annotated video (``.mp4``, ``.avi``, ``.mkv`` or ``.y4m``).
    """
    src = open_video(source)
    pace = (not src.live) if realtime is None else realtime
    fps = src.fps or 30.0
    sink = VideoSink(out, fps=fps, size=(src.width, src.height)) if out else None
    start = time.monotonic()
    next_report = start + 1.0
    try:
        for i, rgb in enumerate(src):
            if pace and not every_frame:
                delay = start + i / fps - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            if every_frame:
                annotated = recognizer.process_now(bgr)
            else:
                annotated = recognizer.process(bgr, pts=i / fps)
            if sink is not None:
                sink.write(cv2.cvtColor(annotated, cv2.COLOR_BGR2RGB))
            now = time.monotonic()
            if now >= next_report:
                next_report = now + 1.0
                report(_report_line(now - start, recognizer))
            if max_seconds is not None and now - start >= max_seconds:
                break
    finally:
        src.close()
        if sink is not None:
            sink.close()
    report(_report_line(time.monotonic() - start, recognizer))
    stats = recognizer.stats()
    return {
        "source": str(source),
        "seconds": round(time.monotonic() - start, 2),
        "stats": stats.to_dict(),
        "seen": recognizer.seen(),
        "out": str(out) if out else None,
    }


def _report_line(elapsed: float, recognizer: LiveRecognizer) -> str:
    result = recognizer.latest
    faces = ", ".join(
        "/".join(f"{p.label} {p.confidence:.2f}" for p in face.predictions)
        for face in (result.faces if result else [])
    )
    add_me = recognizer.add_me
    adding = f"  {add_me.progress().line()}" if add_me is not None else ""
    return f"{elapsed:6.1f}s  {recognizer.stats().line()}  faces: {faces or 'none'}{adding}"


__all__ = ["run_video"]
