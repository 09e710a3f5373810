"""Video files for live recognition: read any video or camera, write and read raw ``.y4m``.

Every function takes and returns **RGB** ``uint8`` frames of shape ``(H, W, 3)``; the
conversions to OpenCV's BGR and to the I420 planes of YUV4MPEG2 happen inside.

* :func:`write_y4m` / :func:`read_y4m`: uncompressed YUV4MPEG2 (4:2:0), the format Chromium's
  fake camera plays (``--use-file-for-fake-video-capture=FILE.y4m``) and the tests and the
  benchmark feed it.
* :func:`face_video_frames`: a 640x480 webcam-like clip built from face photos (each photo held
  for a while, drifting sideways), for tests and benchmarks.
* :func:`open_video` / :class:`VideoSource`: frames from a video file (through OpenCV's FFmpeg
  backend, or :func:`read_y4m` for ``.y4m``) or from a camera index.
* :class:`VideoSink`: writes annotated frames to ``.y4m`` or to an OpenCV container (``.mp4``,
  ``.avi``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from facecore.errors import VideoError

Y4M_MAGIC = b"YUV4MPEG2"



def _check_frame(frame: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"Expected an RGB uint8 H x W x 3 frame, got {getattr(frame, 'shape', frame)!r}.")
    if size is not None and (frame.shape[1], frame.shape[0]) != size:
        raise ValueError(f"Every frame must be {size[0]}x{size[1]}, got {frame.shape[1]}x{frame.shape[0]}.")
    return frame


# --------------------------------------------------------------------------------------------
# YUV4MPEG2


def _y4m_header(width: int, height: int, fps: float) -> bytes:
    num, den = (int(round(fps)), 1) if float(fps).is_integer() else (int(round(fps * 1000)), 1000)
    return f"YUV4MPEG2 W{width} H{height} F{num}:{den} Ip A1:1 C420jpeg\n".encode("ascii")


def write_y4m(path: str | Path, frames: Iterable[np.ndarray], *, fps: float = 30.0) -> int:
    """Write RGB frames (all the same even size) to ``path`` as 4:2:0 YUV4MPEG2; return the count."""
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}.")
    path = Path(path)
    count = 0
    size: tuple[int, int] | None = None
    with path.open("wb") as fh:
        for frame in frames:
            frame = _check_frame(frame, size)
            if size is None:
                size = (frame.shape[1], frame.shape[0])
                if size[0] % 2 or size[1] % 2:
                    raise ValueError(f"4:2:0 video needs an even width and height, got {size[0]}x{size[1]}.")
                fh.write(_y4m_header(size[0], size[1], fps))
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420).tobytes())
            count += 1
    if count == 0:
        path.unlink(missing_ok=True)
        raise ValueError("No frames to write.")
    return count


def _parse_y4m_header(line: bytes, label: str) -> tuple[int, int, float]:
    parts = line.split()
    if not parts or parts[0] != Y4M_MAGIC:
        raise VideoError(f"{label}: not a YUV4MPEG2 file.")
    fields = {p[:1].decode("ascii", "replace"): p[1:].decode("ascii", "replace") for p in parts[1:]}
    try:
        width, height = int(fields["W"]), int(fields["H"])
        num, den = (int(v) for v in fields.get("F", "30:1").split(":"))
    except (KeyError, ValueError) as exc:
        raise VideoError(f"{label}: bad YUV4MPEG2 header {line[:80]!r}.") from exc
    colour = fields.get("C", "420jpeg")
    if not colour.startswith("420"):
        raise VideoError(f"{label}: only 4:2:0 YUV4MPEG2 is supported, not C{colour}.")
    return width, height, num / max(den, 1)


def _y4m_frames(fh: BinaryIO, width: int, height: int, label: str) -> Iterator[np.ndarray]:
    frame_bytes = width * height * 3 // 2
    while True:
        tag = fh.readline()
        if not tag:
            return
        if not tag.startswith(b"FRAME"):
            raise VideoError(f"{label}: expected a FRAME marker, found {tag[:20]!r}.")
        data = fh.read(frame_bytes)
        if len(data) < frame_bytes:
            return  # a truncated last frame is dropped
        yuv = np.frombuffer(data, dtype=np.uint8).reshape(height * 3 // 2, width)
        yield cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)


def y4m_info(path: str | Path) -> tuple[int, int, float]:
    """``(width, height, fps)`` from a ``.y4m`` header."""
    with Path(path).open("rb") as fh:
        return _parse_y4m_header(fh.readline(), str(path))


def read_y4m(path: str | Path) -> Iterator[np.ndarray]:
    """The RGB frames of a 4:2:0 ``.y4m`` file, one at a time."""
    with Path(path).open("rb") as fh:
        width, height, _fps = _parse_y4m_header(fh.readline(), str(path))
        yield from _y4m_frames(fh, width, height, str(path))


# --------------------------------------------------------------------------------------------
# A webcam-like clip from face photos


def face_video_frames(
    images: Sequence[np.ndarray],
    *,
    size: tuple[int, int] = (640, 480),
    frames_per_image: int = 10,
    scale: float = 1.6,
    drift: int = 40,
) -> Iterator[np.ndarray]:
    """RGB frames of ``size`` showing each photo ``frames_per_image`` times on a grey backdrop.

    Each photo is scaled by ``scale`` (an LFW 250x250 photo becomes 400x400, its face about
    180 pixels wide, like a person half a metre from a laptop camera) and drifts sideways by up
    to ``drift`` pixels, so consecutive frames differ as a camera's do.
    """
    width, height = size
    backdrop = np.empty((height, width, 3), dtype=np.uint8)
    backdrop[:] = np.linspace(70, 150, width, dtype=np.uint8)[None, :, None]
    step = 0
    for image in images:
        image = _check_frame(image)
        h, w = image.shape[:2]
        new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        photo = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        for _ in range(frames_per_image):
            dx = int(round(drift * math.sin(step / 12.0)))
            step += 1
            frame = backdrop.copy()
            x0, y0 = (width - new_w) // 2 + dx, (height - new_h) // 2
            sx0, sy0 = max(0, -x0), max(0, -y0)
            dx0, dy0 = max(0, x0), max(0, y0)
            cw, ch = min(new_w - sx0, width - dx0), min(new_h - sy0, height - dy0)
            if cw > 0 and ch > 0:
                frame[dy0 : dy0 + ch, dx0 : dx0 + cw] = photo[sy0 : sy0 + ch, sx0 : sx0 + cw]
            yield frame


# --------------------------------------------------------------------------------------------
# Reading any video or a camera, writing annotated video


class VideoSource:
    """RGB frames from a video file or a camera; iterate it, then :meth:`close` (or use ``with``).

    ``fps`` is the file's or camera's declared rate (0 when unknown); ``live`` is True for a camera.
    """

    def __init__(self, source: str | int) -> None:
        self.label = str(source)
        self.live = isinstance(source, int)
        self._cap: cv2.VideoCapture | None = None
        self._y4m: BinaryIO | None = None
        if not self.live and str(source).lower().endswith(".y4m"):
            path = Path(source)
            if not path.is_file():
                raise VideoError(f"{path}: no such video file.")
            self._y4m = path.open("rb")
            self.width, self.height, self.fps = _parse_y4m_header(self._y4m.readline(), str(path))
            return
        if not self.live and not Path(source).is_file():
            raise VideoError(f"{source}: no such video file (give a file path or a camera index such as 0).")
        self._cap = cv2.VideoCapture(source)
        if not self._cap.isOpened():
            what = f"camera {source}" if self.live else f"{source}"
            raise VideoError(f"{what}: OpenCV cannot open it (unknown format, or no such camera).")
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if math.isfinite(fps) and 0 < fps < 1000 else 0.0

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._y4m is not None:
            yield from _y4m_frames(self._y4m, self.width, self.height, self.label)
            return
        assert self._cap is not None
        while True:
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        if self._y4m is not None:
            self._y4m.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(source: str | int) -> VideoSource:
    """A :class:`VideoSource` for a file path, or a camera for an int or a string of digits."""
    if isinstance(source, str) and source.strip().isdigit():
        source = int(source.strip())
    return VideoSource(source)


class VideoSink:
    """Writes RGB frames to ``path``: ``.y4m`` raw, anything else through ``cv2.VideoWriter``."""

    def __init__(self, path: str | Path, *, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.size = size
        self.fps = fps if fps > 0 else 30.0
        self._y4m: BinaryIO | None = None
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0
        if self.path.suffix.lower() == ".y4m":
            self._y4m = self.path.open("wb")
            self._y4m.write(_y4m_header(size[0] - size[0] % 2, size[1] - size[1] % 2, self.fps))
            return
        codecs = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
        fourcc = codecs.get(self.path.suffix.lower())
        if fourcc is None:
            raise VideoError(f"{self.path}: write .mp4, .avi, .mkv or .y4m.")
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, size)
        if not self._writer.isOpened():
            raise VideoError(f"{self.path}: OpenCV cannot write this file (codec {fourcc} unavailable?).")

    def write(self, frame_rgb: np.ndarray) -> None:
        frame_rgb = _check_frame(frame_rgb, self.size)
        if self._y4m is not None:
            even = frame_rgb[: self.size[1] - self.size[1] % 2, : self.size[0] - self.size[0] % 2]
            self._y4m.write(b"FRAME\n")
            self._y4m.write(cv2.cvtColor(np.ascontiguousarray(even), cv2.COLOR_RGB2YUV_I420).tobytes())
        else:
            assert self._writer is not None
            self._writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._y4m is not None:
            self._y4m.close()
        if self._writer is not None:
            self._writer.release()

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "VideoError",
    "VideoSink",
    "VideoSource",
    "face_video_frames",
    "open_video",
    "read_y4m",
    "write_y4m",
    "y4m_info",
]
