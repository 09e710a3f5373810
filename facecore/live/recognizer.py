"""Live recognition: names on camera frames, without ever making the video wait.

:meth:`LiveRecognizer.process` is all a frame callback does. It puts the frame into a one-slot
buffer (a frame still waiting there is replaced and counted as dropped: the newest frame always
wins, so lag never builds up) and draws the newest published results on a copy of the frame,
which it returns at once. A worker thread takes the newest frame, finds the faces (on a copy
scaled down to ``detect_side``), crops them as the datasets were cropped, classifies them with
every model (one batch per model) and publishes a :class:`LiveResult`: to :attr:`latest`, drawn
on the following frames (boxes are reused until the next result), and to the :attr:`results`
queue (newest only) for a UI such as the dashboard's table of recognised names.

Colour order at the boundary: :meth:`~LiveRecognizer.process` and
:meth:`~LiveRecognizer.annotate` take and return **BGR** ``uint8`` frames, as PyAV gives them
with ``frame.to_ndarray(format="bgr24")`` (:meth:`~LiveRecognizer.av_callback` does that);
:meth:`~LiveRecognizer.recognize` takes **RGB**, like the rest of facecore. Frames stay in
memory; nothing is written to disk.

Also here: the ICE server configuration for WebRTC (:func:`rtc_configuration`, importable without
torch), the default runs for live use (:func:`default_runs`) and :func:`run_video`, the engine of
``python -m facecore live VIDEO_OR_CAMERA``.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

import facecore.gallery  # noqa: F401  # registers gallery:NAME for load_recognizer (no torch)
from facecore.constants import CROP_SIZE, GALLERY_PREFIX
from facecore.detect.detectors import (
    Detection,
    Detector,
    HaarDetector,
    YuNetDetector,
    crop_face,
    find_yunet_model,
)
from facecore.errors import FacecoreError
from facecore.live.addme import AddMe
from facecore.live.video import VideoSink, open_video
from facecore.recognize.results import FacePrediction

if TYPE_CHECKING:  # torch is imported when a recognizer is built, not to read ICE settings
    from facecore.recognize.models import LoadedModel
    from facecore.recognize.runs import Run

#: Display names for the three compared models (the labels drawn on the video).
SHORT_NAMES = {
    "resnet50_pretrained": "R50 pretrained",
    "resnet50_scratch": "R50 scratch",
    "custom_cnn": "CNN",
}
ICE_ENV = "FACECORE_ICE_SERVERS"
#: how :class:`LiveRecognizer` classifies: ``auto`` picks the faster of the other two per model
PRECISIONS = ("auto", "float32", "int8")
_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
_KNOWN = (60, 200, 60)  # BGR
_UNKNOWN = (0, 150, 255)
_TEXT = (255, 255, 255)


# --------------------------------------------------------------------------------------------
# Results and statistics


def _detection(face: FacePrediction) -> Detection:
    """The :class:`Detection` a recognised face came from (to classify it again on a newer frame)."""
    return Detection(face.box, face.score, face.landmarks, face.angle)


@dataclass(frozen=True)
class LiveResult:
    """What the worker found in one frame: faces (each with one prediction per model) and timings."""

    seq: int
    faces: list[FacePrediction]
    submitted: float  # clock time the frame entered the buffer
    published: float  # clock time the result was ready
    detect_ms: float  # 0 when the boxes were reused
    inference_ms: dict[str, float]  # model display name -> milliseconds for this frame's batch
    detected: bool = True  # False: the previous result's boxes were reused on this frame

    def rows(self) -> list[dict[str, Any]]:
        """One row per face and model: ``face``, ``model``, ``name``, ``confidence`` (0-1)."""
        return [
            {"face": i + 1, "model": p.model, "name": p.label, "confidence": round(p.confidence, 3)}
            for i, face in enumerate(self.faces)
            for p in face.predictions
        ]


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


# --------------------------------------------------------------------------------------------
# Detector for live video


def live_detector(name: str = "auto") -> Detector:
    """A detector fit for video: YuNet (``auto``, its model ships with facecore), or Haar without
    rotation when asked for.

    ``name``: ``auto``, ``yunet`` or ``haar``. Haar's rotation retry costs up to a second per frame,
    so live video uses it upright only. Images are downscaled by :class:`LiveRecognizer` first.
    """
    key = name.strip().lower()
    if key not in ("auto", "yunet", "haar"):
        raise FacecoreError(f"Live video uses the auto, yunet or haar detector, not {name!r}.")
    if key != "haar":
        return YuNetDetector(find_yunet_model())
    return HaarDetector(rotate=False)


# --------------------------------------------------------------------------------------------
# The recognizer


@dataclass
class _Pending:
    frame_bgr: np.ndarray
    seq: int
    submitted: float


@dataclass(frozen=True)
class LiveConfig:
    """How a :class:`LiveRecognizer` works (every field has a default).

    ``detector``: a :class:`~facecore.detect.detectors.Detector` or a name for
    :func:`live_detector`. ``threshold``: None uses each run's calibrated threshold; a number
    applies to every model (the recognizer's :attr:`~LiveRecognizer.threshold` may be changed while
    it runs). ``max_faces``: faces classified per frame, the largest first.
    ``detect_side``: frames are scaled so their longer side is at most this for detection.
    ``threads``: each worker thread's torch intra-op threads (:func:`limit_torch_threads`; other
    threads keep theirs; None leaves them alone); 1 keeps a core free for video decoding and encoding.
    ``window_s``: the span the rates of :meth:`~LiveRecognizer.stats` are measured over.
    ``stale_s``: how long a result is still drawn on new frames (longer when results come slowly).
    ``idle_stop_s``: the worker thread starts with the first frame and ends after this long without frames.
    ``redetect_s``: the worker reuses the faces it found for this long (classifying them again on
    the newest frame) before it runs the detector again; frames without faces are always searched.
    0 detects on every frame.
    ``device``: where runs given by name are loaded (``auto``, ``cpu``, ``cuda``, ``mps``).
    ``precision``: ``float32``; ``int8``, each model's int8 copy
    (:meth:`~facecore.recognize.models.LoadedModel.int8_model`, CPU only; a model that cannot be converted
    stays in float32 and says why in :attr:`~LiveRecognizer.int8_problems`);
    or ``auto``, whichever of the two classifies a face faster here, timed once per model with
    ``threads`` threads (:attr:`~LiveRecognizer.precision_ms`). On 2 CPU cores int8 won for ResNet-50
    (64 against 135 ms) and float32 for the custom CNN (6 against 8 ms); off the CPU ``auto`` is float32.
    ``workers``: frames classified at the same time, each by its own worker thread (a result older
    than one already published is dropped); more than one uses the cores that one worker's
    single thread leaves idle, without the per-layer synchronisation of more torch threads.
    ``clock``: the time source (seconds; tests pass a fake one).
    """

    detector: Detector | str = "auto"
    threshold: float | None = None
    max_faces: int = 5
    detect_side: int = 320
    threads: int | None = 1
    window_s: float = 2.0
    stale_s: float = 1.5
    idle_stop_s: float = 10.0
    redetect_s: float = 0.15
    device: str = "auto"
    precision: str = "float32"
    workers: int = 1
    clock: Callable[[], float] = time.monotonic


class LiveRecognizer:
    """Asynchronous face recognition for a stream of frames (see the module docstring).

    ``models``: :class:`~facecore.recognize.models.LoadedModel` objects, or run names / folders / ``.pt``
    files for :func:`~facecore.recognize.models.load_run`, or ``gallery:NAME``. ``config``: how it works
    (:class:`LiveConfig`; default: its defaults).
    """

    def __init__(self, models: Sequence[LoadedModel | str | Path], config: LiveConfig | None = None) -> None:
        from facecore.recognize.models import load_recognizer  # torch: only when a recognizer is built

        config = config or LiveConfig()
        self.config = config
        detector, precision = config.detector, config.precision
        if isinstance(models, (str, Path)) or not isinstance(models, Sequence):
            models = [models]
        if not models:
            raise FacecoreError("Choose at least one trained run or gallery for live recognition.")
        self.models = [load_recognizer(m, device=config.device) for m in models]
        self.detector = live_detector(detector) if isinstance(detector, str) else detector
        self.threshold = config.threshold
        self.max_faces = max(1, int(config.max_faces))
        self.detect_side = max(64, int(config.detect_side))
        self.threads = config.threads
        self.stale_s = config.stale_s
        self.idle_stop_s = config.idle_stop_s
        self.redetect_s = config.redetect_s
        self._boxes: tuple[float, list[Detection]] | None = None  # (when found, faces) for reuse
        self.clock = config.clock
        self.names = _display_names(self.models)
        if precision not in PRECISIONS:
            raise FacecoreError(f"Precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
        #: per display name: ``float32`` or ``int8``, what that model classifies with
        self.precision: dict[str, str] = {}
        #: per display name: why int8 was asked for (or considered by ``auto``) but is not used
        self.int8_problems: dict[str, str] = {}
        #: per display name, with ``auto``: milliseconds per face for ``float32`` and ``int8``
        self.precision_ms: dict[str, dict[str, float]] = {}
        for model, name in zip(self.models, self.names, strict=True):
            self.precision[name] = self._choose_precision(model, name, precision)
        #: newest results only (maxsize 1): a UI polls it with ``results.get(timeout=...)``
        self.results: queue.Queue[LiveResult] = queue.Queue(maxsize=1)
        self.latest: LiveResult | None = None
        self._cond = threading.Condition()
        self._pending: _Pending | None = None
        self.workers = max(1, int(config.workers))
        self._workers: list[threading.Thread] = []
        self._closed = False
        self._seq = 0
        self._frames = 0
        self._recognised = 0
        self._dropped = 0
        self._error: str | None = None
        self._video = _Rate(config.window_s)
        self._recognition = _Rate(config.window_s)
        self._detect_ms: deque[float] = deque(maxlen=30)
        self._inference_ms: dict[str, deque[float]] = {n: deque(maxlen=30) for n in self.names}
        self._latency_ms: deque[float] = deque(maxlen=30)
        self._lag: deque[float] = deque(maxlen=30)
        self._lag_base: float | None = None
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}
        #: the newest "Add me" (:meth:`start_add_me`), kept after it ends so a UI can say how it went
        self.add_me: AddMe | None = None

    # -- configuration
    def _choose_precision(self, model: LoadedModel, name: str, precision: str) -> str:
        if model.score_kind != "probability":  # a gallery: its embedder has one precision
            return "float32"
        fixed = getattr(model, "fixed_precision", None)  # an ONNX export runs as it was exported
        if fixed:
            return str(fixed)
        if precision == "float32" or (precision == "auto" and model.device.type != "cpu"):
            return "float32"
        if model.needs_embeddings:
            self.int8_problems[name] = (
                "it decides Unknown by its embedding's cosine to the class centroids, which the "
                "int8 copy does not give"
            )
            return "float32"
        try:
            model.int8_model()
        except FacecoreError as exc:
            self.int8_problems[name] = str(exc)
            return "float32"
        if precision == "int8":
            return "int8"
        self.precision_ms[name] = _time_precisions(model, self.threads)
        ms = self.precision_ms[name]
        return "int8" if ms["int8"] < ms["float32"] else "float32"

    def precision_notes(self) -> dict[str, str]:
        """Per display name: its precision, with the timings ``auto`` chose by, e.g.
        ``int8 (float32 152 ms, int8 67 ms per face)``."""
        notes = {}
        for model, name in zip(self.models, self.names, strict=True):
            if model.score_kind == "cosine":  # a gallery
                faces = len(model.gallery.files)
                notes[name] = f"{model.embedder.name} embeddings matched against {faces} enrolled faces"
                continue
            chosen = self.precision[name]
            ms = self.precision_ms.get(name)
            timed = f" (float32 {ms['float32']:.0f} ms, int8 {ms['int8']:.0f} ms per face)" if ms else ""
            notes[name] = chosen + timed
        return notes

    @property
    def int8(self) -> dict[str, bool]:
        """Per display name: True when that model classifies with its int8 copy."""
        return {name: p == "int8" for name, p in self.precision.items()}

    @property
    def threshold(self) -> float | None:
        """The Unknown threshold for every model (None: each run's own); may change at any time."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise FacecoreError(f"The threshold must be a finite number, got {value!r}.")
        self._threshold = None if value is None else float(value)

    # -- the synchronous pipeline (worker, snapshots, offline video)
    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB frame, found on a copy scaled to ``detect_side``; boxes in frame pixels."""
        h, w = image_rgb.shape[:2]
        scale = min(1.0, self.detect_side / max(h, w))
        if scale >= 1.0:
            return self.detector.detect(image_rgb)[: self.max_faces]
        small = cv2.resize(
            image_rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
        sx, sy = w / small.shape[1], h / small.shape[0]
        out = []
        for d in self.detector.detect(small)[: self.max_faces]:
            x, y, bw, bh = d.box
            box = (round(x * sx), round(y * sy), round(bw * sx), round(bh * sy))
            marks = None if d.landmarks is None else tuple((px * sx, py * sy) for px, py in d.landmarks)
            out.append(Detection(box, d.score, marks, d.angle))
        return out

    def recognize(
        self,
        image_rgb: np.ndarray,
        *,
        seq: int = 0,
        submitted: float | None = None,
        detections: list[Detection] | None = None,
    ) -> LiveResult:
        """Detect and classify the faces of one RGB frame now (blocking) and return the result.

        ``detections``: faces already found (e.g. on the previous frame) to classify instead.
        """
        start = self.clock()
        detected = detections is None
        if detections is None:
            detections = self.detect(image_rgb)
        detect_ms = (self.clock() - start) * 1000.0 if detected else 0.0
        crops: dict[float, np.ndarray] = {}
        predictions: list[list[Any]] = []
        inference_ms: dict[str, float] = {}
        for model, name in zip(self.models, self.names, strict=True):
            if not detections:
                predictions.append([])
                continue
            if model.margin not in crops:
                crops[model.margin] = np.stack(
                    [crop_face(image_rgb, d, margin=model.margin, size=CROP_SIZE) for d in detections]
                )
            t0 = self.clock()
            emb = None
            if model.needs_embeddings:  # decides Unknown by centroid cosine: the float model's embedding
                probs, emb = model.classify(crops[model.margin])
            else:
                probs = model.probabilities(crops[model.margin], int8=self.precision[name] == "int8")
            inference_ms[name] = (self.clock() - t0) * 1000.0
            # the threshold override is on the probability scale; a gallery keeps its own (cosine)
            override = self.threshold if model.score_kind == "probability" else None
            predictions.append(model.predictions(probs, override, emb))
        faces = [
            FacePrediction(
                box=tuple(int(v) for v in d.box),  # type: ignore[arg-type]
                score=float(d.score),
                landmarks=d.landmarks,
                predictions=[per_model[i] for per_model in predictions],
                angle=float(d.angle),
            )
            for i, d in enumerate(detections)
        ]
        return LiveResult(
            seq=seq,
            faces=faces,
            submitted=start if submitted is None else submitted,
            published=self.clock(),
            detect_ms=detect_ms,
            inference_ms=inference_ms,
            detected=detected,
        )

    # -- the asynchronous path (frame callbacks)
    def submit(self, frame_bgr: np.ndarray, *, pts: float | None = None) -> int:
        """Offer a BGR frame to the worker (replacing one it has not taken); return its number
        (0 when the recognizer is closed: the frame is ignored).

        The worker keeps its own reference, so the caller must not draw on ``frame_bgr`` afterwards.
        ``pts``: the frame's own timestamp in seconds, to measure how far the caller lags behind.
        """
        now = self.clock()
        with self._cond:
            if self._closed:
                return 0  # a callback that still holds a replaced recognizer: the frame goes through
            self._seq += 1
            self._frames += 1
            self._video.add(now)
            if pts is not None:
                drift = now - float(pts)
                self._lag_base = drift if self._lag_base is None else min(self._lag_base, drift)
                self._lag.append((drift - self._lag_base) * 1000.0)
            if self._pending is not None:
                self._dropped += 1
            self._pending = _Pending(frame_bgr, self._seq, now)
            self._workers = [w for w in self._workers if w.is_alive()]
            while len(self._workers) < self.workers:
                worker = threading.Thread(target=self._work, name="facecore-live", daemon=True)
                self._workers.append(worker)
                worker.start()
            self._cond.notify()
            return self._seq

    def process(self, frame_bgr: np.ndarray, *, pts: float | None = None) -> np.ndarray:
        """The frame callback: submit the BGR frame, return a copy with the newest results drawn."""
        if not isinstance(frame_bgr, np.ndarray) or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            shape = getattr(frame_bgr, "shape", None)
            raise ValueError(f"Expected a BGR uint8 H x W x 3 frame, got shape {shape}.")
        out = frame_bgr.copy()
        self.submit(frame_bgr, pts=pts)
        return self.annotate(out, self.current())

    def process_now(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Like :meth:`process`, but recognise this very frame first (offline video: none dropped)."""
        now = self.clock()
        with self._cond:
            self._seq += 1
            self._frames += 1
            self._video.add(now)
            seq = self._seq
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        result = self.recognize(rgb, seq=seq, submitted=now)
        self._offer_add_me(rgb, result)
        self._publish(result)
        return self.annotate(frame_bgr.copy(), result)

    def av_callback(self, frame: Any) -> Any:
        """streamlit-webrtc's ``video_frame_callback``: ``av.VideoFrame`` in, annotated frame out."""
        import av

        try:
            image = frame.to_ndarray(format="bgr24")
            new = av.VideoFrame.from_ndarray(self.process(image, pts=frame.time), format="bgr24")
        except Exception as exc:  # an exception here would end the stream: show the frame as it is
            self._error = f"{type(exc).__name__}: {exc}"
            return frame
        new.pts, new.time_base = frame.pts, frame.time_base
        return new

    def recognize_image(self, image_rgb: np.ndarray) -> tuple[LiveResult, np.ndarray]:
        """One photo (a snapshot): its result and an RGB copy with boxes and labels drawn."""
        result = self.recognize(image_rgb)
        bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
        return result, cv2.cvtColor(self.annotate(bgr, result, panel=False), cv2.COLOR_BGR2RGB)

    def current(self) -> LiveResult | None:
        """The newest result, or None when there is none or it is too old to draw (the face moved on)."""
        result = self.latest
        if result is None:
            return None
        keep = max(self.stale_s, 2.5 * (result.published - result.submitted))
        return result if self.clock() - result.published <= keep else None

    def _work(self) -> None:
        if self.threads:
            limit_torch_threads(int(self.threads))
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    if not self._cond.wait(timeout=self.idle_stop_s):
                        break  # idle
                item, self._pending = self._pending, None
                if item is None or self._closed:
                    if not self._closed and item is None:  # idle: the next frame starts new workers
                        self._workers = [w for w in self._workers if w is not threading.current_thread()]
                    return
            try:
                rgb = cv2.cvtColor(item.frame_bgr, cv2.COLOR_BGR2RGB)
                result = self.recognize(
                    rgb, seq=item.seq, submitted=item.submitted, detections=self._reusable()
                )
                if result.detected:
                    with self._cond:
                        if self._boxes is None or result.submitted >= self._boxes[0]:
                            self._boxes = (result.submitted, [_detection(f) for f in result.faces])
                self._offer_add_me(rgb, result)
            except Exception as exc:  # shown on the video and in the stats; the worker carries on
                self._error = f"{type(exc).__name__}: {exc}"
                continue
            self._publish(result)

    # -- "Add me"
    def start_add_me(
        self, gallery: str, person: str, *, count: int = 5, spacing_s: float = 0.3, timeout_s: float = 30.0
    ) -> AddMe:
        """Start capturing ``count`` faces of the person in view for ``gallery`` (one this recognizer
        recognises with) as ``person``; see :mod:`facecore.live.addme`. Once enrolled, the gallery is
        reloaded here, so the next frames name the person. Replaces an unfinished one.

        Raises :class:`~facecore.errors.ReadOnlyModeError` in presentation mode unless the presenter
        allows it, and :class:`FacecoreError` for a gallery this recognizer does not use.
        """
        name = str(gallery).removeprefix(GALLERY_PREFIX)
        model = self._gallery_model(name)
        self.add_me = AddMe(
            model.gallery.name,
            person,
            margin=model.gallery.margin,
            count=count,
            spacing_s=spacing_s,
            timeout_s=timeout_s,
            on_enrolled=lambda _report: self.reload_gallery(name),
            clock=self.clock,
        )
        return self.add_me

    def _gallery_model(self, name: str) -> Any:
        for model in self.models:
            if model.score_kind == "cosine" and model.gallery.name == name:
                return model
        using = [m.gallery.name for m in self.models if m.score_kind == "cosine"]
        raise FacecoreError(
            f"This live video does not recognise with gallery {name!r}"
            + (f" (it uses {', '.join(using)})." if using else " (it uses trained runs, no gallery).")
            + " Choose that gallery to add someone to it."
        )

    def reload_gallery(self, name: str) -> None:
        """Read gallery ``name`` again (after an enrollment): the next frames are matched against it.

        The embedder and the threshold of the model it replaces are kept; the swap is one
        assignment, so a worker classifying meanwhile finishes with the old gallery.
        """
        from facecore.gallery.match import load_gallery_model  # torch: only when a gallery is reloaded

        models = list(self.models)
        for i, model in enumerate(models):
            if model.score_kind == "cosine" and model.gallery.name == name:
                fresh = load_gallery_model(name, embedder=model.embedder)
                fresh.threshold = model.threshold
                models[i] = fresh
        self.models = models

    def _offer_add_me(self, image_rgb: np.ndarray, result: LiveResult) -> None:
        """Hand a frame the detector ran on to the running "Add me" (worker threads only)."""
        add_me = self.add_me
        if add_me is None or not result.detected:
            return
        try:
            add_me.offer(image_rgb, [_detection(f) for f in result.faces], result.submitted)
        except Exception as exc:  # noqa: BLE001 - shown in the stats; recognition carries on
            self._error = f"Add me: {type(exc).__name__}: {exc}"

    def _reusable(self) -> list[Detection] | None:
        """The faces found less than ``redetect_s`` ago, to classify again on a newer frame."""
        boxes = self._boxes  # another worker may replace it meanwhile: read it once
        if boxes is None or not boxes[1] or self.clock() - boxes[0] > self.redetect_s:
            return None
        return boxes[1]

    def _publish(self, result: LiveResult) -> None:
        with self._cond:
            if self.latest is not None and result.seq < self.latest.seq:
                return  # another worker already published a newer frame
            self._error = None
            self._recognised += 1
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
            self.latest = result
        with contextlib.suppress(queue.Empty):
            self.results.get_nowait()  # the UI wants the newest result only
        with contextlib.suppress(queue.Full):
            self.results.put_nowait(result)

    # -- reading the state
    def stats(self) -> LiveStats:
        """The current :class:`LiveStats`."""
        now = self.clock()
        with self._cond:
            return LiveStats(
                video_fps=self._video.per_second(now),
                recognition_fps=self._recognition.per_second(now),
                detect_ms=_mean(self._detect_ms),
                inference_ms={n: _mean(v) for n, v in self._inference_ms.items()},
                latency_ms=_mean(self._latency_ms),
                lag_ms=_mean(self._lag) if self._lag else None,
                frames=self._frames,
                recognised=self._recognised,
                dropped=self._dropped,
                faces=len(self.latest.faces) if self.latest else 0,
                error=self._error,
            )

    def seen(self) -> list[dict[str, Any]]:
        """Names recognised so far (not Unknown): ``name``, ``model``, ``times``, ``best`` confidence."""
        with self._cond:
            items = [{"name": n, "model": m, **v} for (n, m), v in self._seen.items()]
        return sorted(items, key=lambda r: (-r["times"], r["name"], r["model"]))

    @property
    def running(self) -> bool:
        """True while a worker thread is alive."""
        return any(w.is_alive() for w in list(self._workers))

    # -- drawing
    def annotate(self, frame_bgr: np.ndarray, result: LiveResult | None, *, panel: bool = True) -> np.ndarray:
        """Draw ``result``'s boxes and labels, and (``panel``) the stats, on ``frame_bgr``; return it."""
        many = len(self.models) > 1
        for face in result.faces if result else []:
            lines = [
                (f"{SHORT_NAMES.get(p.model, p.model)} " if many else "") + f"{p.label} {p.confidence:.0%}"
                for p in face.predictions
            ]
            colours = [_UNKNOWN if p.unknown else _KNOWN for p in face.predictions]
            draw_face(frame_bgr, face.box, lines, colours)
        if not panel:
            return frame_bgr
        stats = self.stats()
        lines = [f"{stats.video_fps:.1f} fps | recognition {stats.recognition_fps:.1f}/s"]
        timing = [f"det {stats.detect_ms:.0f} ms"] + [
            f"{SHORT_NAMES.get(n, n)} {ms:.0f} ms" for n, ms in stats.inference_ms.items()
        ]
        lines.append(" | ".join(timing))
        if stats.error:
            lines.append(stats.error[:70])
        add_me = self.add_me
        if add_me is not None:
            progress = add_me.progress()
            if not progress.finished or self.clock() - add_me.started - progress.seconds < 4.0:
                lines.append(progress.line()[:70])
        draw_panel(frame_bgr, lines)
        return frame_bgr

    # -- life cycle
    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers (after their current frames) and refuse further frames."""
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()
            workers = list(self._workers)
        for worker in workers:
            if worker is not threading.current_thread():
                worker.join(timeout)

    def __enter__(self) -> LiveRecognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def limit_torch_threads(n: int) -> None:
    """Give the calling thread ``n`` torch intra-op threads, leaving every other thread's as it was.

    ``torch.set_num_threads`` sets the calling thread's OpenMP/MKL threads and the default for
    threads that run torch for the first time later (a Streamlit server starts a new thread for
    each script run); a short helper thread puts that default back.
    """
    import torch

    default = torch.get_num_threads()
    torch.set_num_threads(n)
    if default != n:
        helper = threading.Thread(target=torch.set_num_threads, args=(default,), name="facecore-threads")
        helper.start()
        helper.join()


def _time_precisions(model: LoadedModel, threads: int | None, runs: int = 3) -> dict[str, float]:
    """Milliseconds to classify one face in float32 and in int8: the best of ``runs`` after a
    warm-up, in a helper thread with ``threads`` torch threads (as the worker will have)."""
    face = np.full((CROP_SIZE, CROP_SIZE, 3), 128, np.uint8)
    timings: dict[str, float] = {}
    errors: list[str] = []

    def measure() -> None:
        try:
            if threads:
                limit_torch_threads(int(threads))
            for key, int8 in (("float32", False), ("int8", True)):
                model.probabilities(face, int8=int8)
                best = math.inf
                for _ in range(runs):
                    t0 = time.perf_counter()
                    model.probabilities(face, int8=int8)
                    best = min(best, time.perf_counter() - t0)
                timings[key] = round(best * 1000.0, 2)
        except Exception as exc:  # reported below, in the constructing thread
            errors.append(f"{type(exc).__name__}: {exc}")

    helper = threading.Thread(target=measure, name="facecore-precision")
    helper.start()
    helper.join()
    if errors:
        raise FacecoreError(f"Could not time {model.run} in float32 and int8: {errors[0]}")
    return timings


def _display_names(models: Sequence[LoadedModel]) -> list[str]:
    """Each model's name in stats: its model name, or its run name when two share a model."""
    counts: dict[str, int] = {}
    for m in models:
        counts[m.model_name] = counts.get(m.model_name, 0) + 1
    return [m.model_name if counts[m.model_name] == 1 else m.run for m in models]


def draw_face(
    image_bgr: np.ndarray,
    box: Sequence[int],
    lines: Sequence[str],
    colours: Sequence[tuple[int, int, int]],
) -> None:
    """A box around a face and one filled label per line above it (below when there is no room)."""
    x, y, w, h = (int(v) for v in box)
    main = colours[0] if colours else _KNOWN
    cv2.rectangle(image_bgr, (x, y), (x + w, y + h), main, 2)
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1
    line_h = 22
    top = y - line_h * len(lines)
    if top < 0:
        top = y + h
    for i, (text, colour) in enumerate(zip(lines, colours, strict=True)):
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
        y0 = top + i * line_h
        cv2.rectangle(image_bgr, (x, y0), (x + tw + 8, y0 + line_h), colour, -1)
        cv2.putText(image_bgr, text, (x + 4, y0 + line_h - 6), font, scale, _TEXT, thick, cv2.LINE_AA)


def draw_panel(image_bgr: np.ndarray, lines: Sequence[str]) -> None:
    """White text on a dark box in the top-left corner."""
    font, scale, thick, line_h = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1, 20
    width = max((cv2.getTextSize(t, font, scale, thick)[0][0] for t in lines), default=0)
    cv2.rectangle(image_bgr, (0, 0), (width + 12, line_h * len(lines) + 8), (30, 30, 30), -1)
    for i, text in enumerate(lines):
        cv2.putText(image_bgr, text, (6, 19 + i * line_h), font, scale, _TEXT, thick, cv2.LINE_AA)


# --------------------------------------------------------------------------------------------
# Runs offered for live use


def default_runs(runs: Sequence[Run], group: str | None = None) -> dict[str, str]:
    """Model -> run: the newest run of each model (only runs of ``group`` when given).

    ``runs``: :class:`~facecore.recognize.runs.Run` records, newest first (as
    :func:`~facecore.recognize.runs.list_runs` gives them); finished runs win over runs still training
    or stopped.
    """
    chosen: dict[str, str] = {}
    for finished in (True, False):
        for r in runs:
            if group is not None and (r.group or "") != group:
                continue
            if (r.state == "finished") == finished and r.model is not None and r.model not in chosen:
                chosen[r.model] = r.run
    return chosen


# --------------------------------------------------------------------------------------------
# ICE servers for WebRTC


def parse_ice_servers(value: Any, *, source: str) -> list[dict[str, Any]]:
    """Validate ICE servers: a list of ``{"urls", "username"?, "credential"?}`` (or its JSON text,
    or an object ``{"iceServers": [...]}``).

    ``urls`` is one URL or a list, each ``stun:``, ``stuns:``, ``turn:`` or ``turns:``; TURN
    servers need ``username`` and ``credential``. Raises :class:`FacecoreError` naming ``source``.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise FacecoreError(f"{source}: not valid JSON ({exc}).") from exc
    if isinstance(value, Mapping):
        value = value.get("iceServers", [value])
    if not isinstance(value, (list, tuple)):
        raise FacecoreError(f"{source}: expected a list of ICE servers, got {type(value).__name__}.")
    servers = []
    for i, raw in enumerate(value):
        if not isinstance(raw, Mapping):
            raise FacecoreError(f"{source}: server {i + 1} is not a table/object with 'urls'.")
        urls = raw.get("urls", raw.get("url"))
        urls = [urls] if isinstance(urls, str) else list(urls) if isinstance(urls, (list, tuple)) else []
        if not urls or not all(isinstance(u, str) and u.lower().startswith(_ICE_SCHEMES) for u in urls):
            raise FacecoreError(
                f"{source}: server {i + 1} needs 'urls' starting with stun:, stuns:, turn: or turns: "
                f"(got {raw.get('urls')!r})."
            )
        server: dict[str, Any] = {"urls": urls}
        for key in ("username", "credential"):
            if raw.get(key) is not None:
                server[key] = str(raw[key])
        turn = any(u.lower().startswith("turn") for u in urls)
        if turn and not ("username" in server and "credential" in server):
            raise FacecoreError(
                f"{source}: server {i + 1} is a TURN server and needs 'username' and 'credential'."
            )
        servers.append(server)
    return servers


def rtc_configuration(*, env: str | None = None, secret: Any = None) -> tuple[dict[str, Any], str]:
    """The WebRTC configuration and where it came from, in words.

    ``env``: the value of ``FACECORE_ICE_SERVERS`` (a JSON list), which wins; ``secret``: the
    ``servers`` entry of the ``[ice]`` table of ``.streamlit/secrets.toml``. Neither: no ICE
    servers (``{"iceServers": []}``), so only direct connections work (this machine, its network).
    """
    if env is not None and env.strip():
        servers = parse_ice_servers(env, source=ICE_ENV)
        return {"iceServers": servers}, f"{len(servers)} ICE server(s) from {ICE_ENV}"
    if secret is not None:
        servers = parse_ice_servers(_plain(secret), source=".streamlit/secrets.toml [ice] servers")
        return {"iceServers": servers}, f"{len(servers)} ICE server(s) from .streamlit/secrets.toml [ice]"
    return {"iceServers": []}, "no STUN/TURN servers: direct connections only (this computer or its network)"


def _plain(value: Any) -> Any:
    """Mappings and sequences (e.g. Streamlit's secrets AttrDict) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Video files and cameras without a browser


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


__all__ = [
    "ICE_ENV",
    "LiveConfig",
    "LiveRecognizer",
    "LiveResult",
    "LiveStats",
    "PRECISIONS",
    "default_runs",
    "draw_face",
    "draw_panel",
    "limit_torch_threads",
    "live_detector",
    "parse_ice_servers",
    "rtc_configuration",
    "run_video",
]
