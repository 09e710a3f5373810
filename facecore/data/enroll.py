"""Webcam enrollment: which camera frames make good training faces, and which do not.

Each frame goes through face detection, then four checks on the largest face:

- **size**: the face box's longer side must be at least ``min_face`` pixels;
- **clarity**: with YuNet, the detector's score must reach ``min_score``. Real LFW faces score
  0.89 to 0.95, while the dog's face in ``dogs.jpg`` that YuNet takes for a face at 640 px
  scores 0.85. (Haar scores are on another scale and are not checked);
- **sharpness**: the variance of the Laplacian of the face as a 128x128 grey crop, divided by
  that crop's grey-level standard deviation (so a low-contrast face is not taken for a blurry
  one), must reach ``min_sharpness``. Sharp LFW faces score 1.4 to 14; the same faces blurred
  with a Gaussian of sigma 2 score 0.2 to 2.6, mostly under 1;
- **variety**: a crop whose 32x32 grey thumbnail differs from one of the last accepted crops
  by less than ``duplicate_mad`` grey levels on average is a near-duplicate and is skipped.

:func:`assess_frame` is the pure check. :class:`EnrollSession` keeps the accepted crops of one
capture, is safe to feed from a video thread (it never touches the UI), and hands accepted
crops to whoever polls :meth:`EnrollSession.take_new`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from facecore.constants import CROP_MARGIN
from facecore.detect.crop import crop_face
from facecore.detect.detection import Detection, Detector
from facecore.draw import draw_box
from facecore.errors import ConfigError

#: Verdict codes, in the order the checks run.
CODES = ("ok", "no_face", "too_small", "unclear", "blurry", "duplicate", "full")


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds for an enrollment frame; see the module docstring for what each one measures."""

    min_face: int = 80
    min_score: float = 0.88
    min_sharpness: float = 1.0
    duplicate_mad: float = 6.0
    compare_last: int = 5
    crop_size: int = 256
    margin: float = CROP_MARGIN

    def __post_init__(self) -> None:
        if self.min_face < 1:
            raise ConfigError(f"min_face must be at least 1 pixel, got {self.min_face}.")
        if self.min_sharpness < 0 or self.duplicate_mad < 0:
            raise ConfigError("min_sharpness and duplicate_mad must not be negative.")
        if not 0 <= self.min_score <= 1:
            raise ConfigError(f"min_score must be between 0 and 1, got {self.min_score}.")
        if self.compare_last < 1:
            raise ConfigError(f"compare_last must be at least 1, got {self.compare_last}.")


@dataclass(frozen=True)
class Verdict:
    """What became of one frame: ``code`` (one of :data:`CODES`), a human ``reason``, and the
    face ``crop`` (RGB ``crop_size`` square) when a face was found."""

    code: str
    reason: str
    detection: Detection | None = None
    crop: np.ndarray | None = field(default=None, repr=False)
    sharpness: float | None = None
    difference: float | None = None

    @property
    def accepted(self) -> bool:
        return self.code == "ok"


def _grey(crop_rgb: np.ndarray, size: int) -> np.ndarray:
    small = cv2.resize(crop_rgb, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float64)


def sharpness(crop_rgb: np.ndarray) -> float:
    """Contrast-normalised variance of the Laplacian of a face crop (higher is sharper)."""
    grey = _grey(crop_rgb, 128)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var() / (grey.std() + 1e-6))


def thumbprint(crop_rgb: np.ndarray) -> np.ndarray:
    """A 32x32 grey thumbnail of a crop, for near-duplicate checks."""
    return _grey(crop_rgb, 32)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbprints, in grey levels (0-255)."""
    return float(np.abs(a - b).mean())


def assess_frame(
    image_rgb: np.ndarray,
    detector: Detector,
    config: QualityConfig | None = None,
    recent: Sequence[np.ndarray] = (),
) -> Verdict:
    """Check one RGB frame; ``recent`` are thumbprints of the last accepted crops."""
    cfg = config or QualityConfig()
    found = detector.detect(image_rgb)
    if not found:
        return Verdict("no_face", "no face found: look at the camera, with your face in the light")
    best = found[0]
    side = max(best.box[2], best.box[3])
    crop = crop_face(image_rgb, best, margin=cfg.margin, size=cfg.crop_size)
    if side < cfg.min_face:
        return Verdict(
            "too_small",
            f"face too small ({side} px, need {cfg.min_face}): come closer to the camera",
            best,
            crop,
        )
    if detector.name == "yunet" and best.score < cfg.min_score:
        return Verdict(
            "unclear",
            f"face not clear (detector score {best.score:.2f}, need {cfg.min_score:.2f}): "
            "face the camera, in good light",
            best,
            crop,
        )
    sharp = sharpness(crop)
    if sharp < cfg.min_sharpness:
        return Verdict(
            "blurry",
            f"blurry (sharpness {sharp:.2f}, need {cfg.min_sharpness:.2f}): hold still, or add light",
            best,
            crop,
            sharp,
        )
    if recent:
        thumb = thumbprint(crop)
        diff = min(mean_abs_diff(thumb, r) for r in recent)
        if diff < cfg.duplicate_mad:
            return Verdict(
                "duplicate",
                f"too like a face already taken (difference {diff:.1f}, need {cfg.duplicate_mad:g}): "
                "turn your head a little or change expression",
                best,
                crop,
                sharp,
                diff,
            )
    else:
        diff = None
    return Verdict("ok", "accepted", best, crop, sharp, diff)


class EnrollSession:
    """The crops of one enrollment capture, fed frame by frame from any thread.

    ``offer(frame)`` assesses at most one frame per ``interval`` seconds (the others get the
    last verdict back, so a fast camera does not load the CPU) and stops accepting at
    ``target`` crops. Accepted crops are queued for :meth:`take_new`.
    """

    def __init__(
        self,
        detector: Detector,
        *,
        target: int = 20,
        config: QualityConfig | None = None,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if target < 1:
            raise ConfigError(f"The number of faces to capture must be at least 1, got {target}.")
        self.detector = detector
        self.target = int(target)
        self.config = config or QualityConfig()
        self.interval = float(interval)
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: queue.Queue[np.ndarray] = queue.Queue()
        self._thumbs: list[np.ndarray] = []
        self._accepted = 0
        self._last_time: float | None = None
        self.last: Verdict | None = None
        self.rejected: dict[str, int] = dict.fromkeys(CODES[1:-1], 0)  # not "ok", not "full"

    @property
    def accepted(self) -> int:
        return self._accepted

    @property
    def done(self) -> bool:
        return self._accepted >= self.target

    def offer(self, image_rgb: np.ndarray, *, force: bool = False) -> Verdict:
        """Assess a frame (unless one was assessed less than ``interval`` s ago and not ``force``)."""
        with self._lock:
            now = self._clock()
            too_soon = self._last_time is not None and now - self._last_time < self.interval
            if too_soon and not force and self.last is not None:
                return self.last
            self._last_time = now
            if self.done:
                verdict = Verdict("full", f"done: {self.target} faces captured")
            else:
                recent = self._thumbs[-self.config.compare_last :]
                verdict = assess_frame(image_rgb, self.detector, self.config, recent)
            if verdict.accepted and verdict.crop is not None:
                self._thumbs.append(thumbprint(verdict.crop))
                self._accepted += 1
                self._queue.put(verdict.crop)
            elif verdict.code in self.rejected:
                self.rejected[verdict.code] += 1
            self.last = verdict
            return verdict

    def process(self, image_rgb: np.ndarray) -> np.ndarray:
        """Offer a video frame and return it annotated with the verdict (a video frame callback)."""
        verdict = self.offer(image_rgb)
        return annotate(image_rgb, verdict, progress=f"{self.accepted}/{self.target}")

    def take_new(self) -> list[np.ndarray]:
        """The crops accepted since the last call (never blocks)."""
        out: list[np.ndarray] = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out


_COLOURS = {"ok": (40, 180, 60), "duplicate": (230, 170, 0), "full": (40, 120, 230)}


def annotate(image_rgb: np.ndarray, verdict: Verdict | None, *, progress: str = "") -> np.ndarray:
    """A copy of the frame with the face box and the verdict written on it (for the live view)."""
    out = np.ascontiguousarray(image_rgb).copy()
    if verdict is None:
        return out
    colour = _COLOURS.get(verdict.code, (220, 40, 40))
    if verdict.detection is not None:
        draw_box(out, verdict.detection.box, colour, order="RGB")
    text = verdict.reason.split(":")[0]
    if progress:
        text = f"{progress}  {text}"
    scale = max(0.5, out.shape[1] / 1000)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    cv2.rectangle(out, (0, 0), (tw + 12, th + base + 12), (0, 0, 0), -1)
    cv2.putText(out, text, (6, th + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 2, cv2.LINE_AA)
    return out


__all__ = [
    "CODES",
    "EnrollSession",
    "QualityConfig",
    "Verdict",
    "annotate",
    "assess_frame",
    "mean_abs_diff",
    "sharpness",
    "thumbprint",
]
