"""A live recognizer's figures: :class:`LiveStats` (what it reports) and :class:`StatsBook`
(the counters, rates and timings it keeps as frames come in and results go out)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from facecore.live.result import LiveResult

#: the timings averaged: the last this many results
_KEEP = 30


@dataclass
class LiveStats:
    """Rates over the last ``window_s`` seconds, mean timings over the last results, totals."""

    video_fps: float = 0.0
    recognition_fps: float = 0.0
    detect_ms: float = 0.0
    inference_ms: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0  # frame entered the buffer -> its result published
    lag_ms: float | None = None  # how far the callback runs behind the frames' own clock
    frames: int = 0
    recognised: int = 0
    dropped: int = 0
    faces: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def line(self) -> str:
        """E.g. ``video 19.8 fps | recognition 7.9/s | detection 9 ms | CNN 14 ms | dropped 12``."""
        parts = [f"video {self.video_fps:.1f} fps", f"recognition {self.recognition_fps:.1f}/s"]
        parts.append(f"detection {self.detect_ms:.0f} ms")
        parts += [f"{name} {ms:.0f} ms" for name, ms in self.inference_ms.items()]
        parts.append(f"dropped {self.dropped}")
        if self.lag_ms is not None:
            parts.append(f"lag {self.lag_ms:.0f} ms")
        return " | ".join(parts)


class _Rate:
    """Events per second over a sliding time window."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.times: deque[float] = deque()

    def add(self, t: float) -> None:
        self.times.append(t)
        self.prune(t)

    def prune(self, now: float) -> None:
        while self.times and now - self.times[0] > self.window_s:
            self.times.popleft()

    def per_second(self, now: float) -> float:
        self.prune(now)
        if len(self.times) < 2:
            return 0.0
        span = max(now, self.times[-1]) - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else 0.0


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0


class StatsBook:
    """The figures of one live recognizer: frames in, results out, the names seen.

    Not locked itself: the recognizer calls it under its own lock. ``names``: the models' display
    names; ``window_s``: the span the rates are measured over.
    """

    def __init__(self, names: Sequence[str], window_s: float) -> None:
        self.frames = 0
        self.recognised = 0
        self.dropped = 0
        self.error: str | None = None
        self._video = _Rate(window_s)
        self._recognition = _Rate(window_s)
        self._detect_ms: deque[float] = deque(maxlen=_KEEP)
        self._inference_ms: dict[str, deque[float]] = {n: deque(maxlen=_KEEP) for n in names}
        self._latency_ms: deque[float] = deque(maxlen=_KEEP)
        self._lag: deque[float] = deque(maxlen=_KEEP)
        self._lag_base: float | None = None
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}

    def frame(self, now: float, pts: float | None = None, *, replaces: bool = False) -> None:
        """A frame came in at ``now`` (``pts``: its own timestamp, to measure the lag;
        ``replaces``: it replaced one the worker had not taken, which is dropped)."""
        self.frames += 1
        self._video.add(now)
        if pts is not None:
            drift = now - float(pts)
            self._lag_base = drift if self._lag_base is None else min(self._lag_base, drift)
            self._lag.append((drift - self._lag_base) * 1000.0)
        if replaces:
            self.dropped += 1

    def published(self, result: LiveResult) -> None:
        """``result`` was published: count it, keep its timings and the names it recognised."""
        self.error = None
        self.recognised += 1
        self._recognition.add(result.published)
        if result.detected:
            self._detect_ms.append(result.detect_ms)
        for name, ms in result.inference_ms.items():
            self._inference_ms[name].append(ms)
        self._latency_ms.append((result.published - result.submitted) * 1000.0)
        for face in result.faces:
            for p in face.predictions:
                if not p.unknown:
                    seen = self._seen.setdefault((p.label, p.model), {"times": 0, "best": 0.0})
                    seen["times"] += 1
                    seen["best"] = max(seen["best"], p.confidence)
                    seen["last"] = result.published

    def stats(self, now: float, faces: int) -> LiveStats:
        """The :class:`LiveStats` at ``now``, with ``faces`` in the newest result."""
        return LiveStats(
            video_fps=self._video.per_second(now),
            recognition_fps=self._recognition.per_second(now),
            detect_ms=_mean(self._detect_ms),
            inference_ms={n: _mean(v) for n, v in self._inference_ms.items()},
            latency_ms=_mean(self._latency_ms),
            lag_ms=_mean(self._lag) if self._lag else None,
            frames=self.frames,
            recognised=self.recognised,
            dropped=self.dropped,
            faces=faces,
            error=self.error,
        )

    def seen(self) -> list[dict[str, Any]]:
        """Names recognised so far (not Unknown): ``name``, ``model``, ``times``, ``best`` confidence."""
        items = [{"name": n, "model": m, **v} for (n, m), v in self._seen.items()]
        return sorted(items, key=lambda r: (-r["times"], r["name"], r["model"]))


__all__ = ["LiveStats", "StatsBook"]
