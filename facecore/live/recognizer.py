"""Live recognition: names on camera frames, without ever making the video wait.

:meth:`LiveRecognizer.process` is all a frame callback does. It puts the frame into a one-slot
buffer (a frame still waiting there is replaced and counted as dropped: the newest frame always
wins, so lag never builds up) and draws the newest published results on a copy of the frame,
which it returns at once. A worker thread takes the newest frame, finds the faces (on a copy
scaled down to ``detect_side``), crops them as the datasets were cropped, classifies them with
every model (one batch per model) and publishes a :class:`~facecore.live.result.LiveResult`: to
:attr:`latest`, drawn on the following frames (boxes are reused until the next result), and to
the :attr:`results` queue (newest only) for a UI such as the dashboard's table of recognised names.

Colour order at the boundary: :meth:`~LiveRecognizer.process` and
:meth:`~LiveRecognizer.annotate` take and return **BGR** ``uint8`` frames, as PyAV gives them
with ``frame.to_ndarray(format="bgr24")`` (:meth:`~LiveRecognizer.av_callback` does that);
:meth:`~LiveRecognizer.recognize` takes **RGB**, like the rest of facecore. Frames stay in
memory; nothing is written to disk.

Its parts live beside it: the settings (:mod:`~facecore.live.config`), detection
(:mod:`~facecore.live.detection`), the precision of each model (:mod:`~facecore.live.precision`),
the figures (:mod:`~facecore.live.stats`), drawing (:mod:`~facecore.live.drawing`) and the
galleries "Add me" adds to (:mod:`~facecore.live.galleries`, :mod:`~facecore.live.addme`).
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

import facecore.gallery  # noqa: F401  # registers gallery:NAME for load_recognizer (no torch)
from facecore.constants import CROP_SIZE
from facecore.detect.crop import crop_face
from facecore.detect.detection import Detection
from facecore.errors import ConfigError
from facecore.live.addme import AddMe
from facecore.live.config import LiveConfig, check_threshold
from facecore.live.detection import detect_scaled, detection_of, live_detector
from facecore.live.drawing import draw_faces, draw_panel, panel_lines
from facecore.live.frames import FrameSlot, Pending
from facecore.live.galleries import find_gallery, gallery_name, with_gallery_reloaded
from facecore.live.precision import choose_precision, limit_torch_threads, precision_note
from facecore.live.result import LiveResult
from facecore.live.runs import display_names
from facecore.live.stats import LiveStats, StatsBook
from facecore.recognize.protocol import PROBABILITY
from facecore.recognize.results import FacePrediction

if TYPE_CHECKING:  # torch is imported when a recognizer is built, not to read its settings
    from facecore.recognize.protocol import Recognizer


def _takes_override(model: Recognizer) -> bool:
    """True when the recognizer-wide threshold applies to ``model``: its scores are probabilities
    (a gallery keeps its own threshold, on the cosine scale)."""
    return model.threshold_scale.kind == PROBABILITY


class LiveRecognizer:
    """Asynchronous face recognition for a stream of frames (see the module docstring).

    ``models``: :class:`~facecore.recognize.protocol.Recognizer` objects (trained runs, exports,
    galleries), or run names / folders / ``.pt`` files for
    :func:`~facecore.recognize.models.load_run`, or ``gallery:NAME``. ``config``: how it works
    (:class:`~facecore.live.config.LiveConfig`; default: its defaults).
    """

    def __init__(self, models: Sequence[Recognizer | str | Path], config: LiveConfig | None = None) -> None:
        from facecore.recognize.models import load_recognizer  # torch: only when a recognizer is built

        if isinstance(models, (str, Path)) or not isinstance(models, Sequence):
            models = [models]
        if not models:
            raise ConfigError("Choose at least one trained run or gallery for live recognition.")
        self.config = config = (config or LiveConfig()).checked()
        self.models = [load_recognizer(m, device=config.device) for m in models]
        detector = config.detector
        self.detector = live_detector(detector) if isinstance(detector, str) else detector
        self.threshold = config.threshold
        self.max_faces = config.max_faces
        self.clock = config.clock
        self._boxes: tuple[float, list[Detection]] | None = None  # (when found, faces) for reuse
        self.names = display_names(self.models)
        chosen = {
            name: choose_precision(model, config.precision, config.threads)
            for model, name in zip(self.models, self.names, strict=True)
        }
        #: per display name: ``float32`` or ``int8``, what that model classifies with
        self.precision = {name: c.precision for name, c in chosen.items()}
        #: per display name: why int8 was asked for (or considered by ``auto``) but is not used
        self.int8_problems = {name: c.problem for name, c in chosen.items() if c.problem}
        #: per display name, with ``auto``: milliseconds per face for ``float32`` and ``int8``
        self.precision_ms = {name: c.ms for name, c in chosen.items() if c.ms}
        #: newest results only (maxsize 1): a UI polls it with ``results.get(timeout=...)``
        self.results: queue.Queue[LiveResult] = queue.Queue(maxsize=1)
        self.latest: LiveResult | None = None
        self._slot = FrameSlot(self._work, workers=config.workers, idle_stop_s=config.idle_stop_s)
        self._cond = self._slot.cond  # guards the state below too
        self._seq = 0
        self._book = StatsBook(self.names, config.window_s)
        #: the newest "Add me" (:meth:`start_add_me`), kept after it ends so a UI can say how it went
        self.add_me: AddMe | None = None

    # -- configuration
    def precision_notes(self) -> dict[str, str]:
        """Per display name: its precision, with the timings ``auto`` chose by, e.g.
        ``int8 (float32 152 ms, int8 67 ms per face)``."""
        return {
            name: precision_note(model, self.precision[name], self.precision_ms.get(name))
            for model, name in zip(self.models, self.names, strict=True)
        }

    @property
    def int8(self) -> dict[str, bool]:
        """Per display name: True when that model classifies with its int8 copy."""
        return {name: p == "int8" for name, p in self.precision.items()}

    @property
    def threshold(self) -> float | None:
        """The Unknown threshold of the models whose scores are probabilities (None: each run's
        own); may change at any time. :meth:`set_threshold` sets galleries' too."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        self._threshold = check_threshold(value)

    def set_threshold(self, value: float) -> None:
        """The Unknown threshold for every model it runs: the override of the models whose scores
        are probabilities (:attr:`threshold`), and each gallery's own threshold (on its cosine
        scale, kept within it)."""
        self.threshold = value
        for model in self.models:
            if not _takes_override(model):
                model.threshold = model.threshold_scale.clamp(value)

    # -- the synchronous pipeline (worker, snapshots, offline video)
    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB frame, found on a copy scaled to ``detect_side``; boxes in frame pixels."""
        return detect_scaled(self.detector, image_rgb, self.config.detect_side, self.max_faces)

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
        predictions, inference_ms = self._classify(image_rgb, detections)
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

    def _classify(
        self, image_rgb: np.ndarray, detections: list[Detection]
    ) -> tuple[list[list[Any]], dict[str, float]]:
        """Per model, one prediction per face (one batch each), and its milliseconds by display name."""
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
            override = self.threshold if _takes_override(model) else None
            predictions.append(model.predictions(probs, override, emb))
        return predictions, inference_ms

    # -- the asynchronous path (frame callbacks)
    def submit(self, frame_bgr: np.ndarray, *, pts: float | None = None) -> int:
        """Offer a BGR frame to the worker (replacing one it has not taken); return its number
        (0 when the recognizer is closed: the frame is ignored).

        The worker keeps its own reference, so the caller must not draw on ``frame_bgr`` afterwards.
        ``pts``: the frame's own timestamp in seconds, to measure how far the caller lags behind.
        """
        now = self.clock()
        with self._cond:
            if self._slot.closed:
                return 0  # a callback that still holds a replaced recognizer: the frame goes through
            self._seq += 1
            replaced = self._slot.put(Pending(frame_bgr, self._seq, now))
            self._book.frame(now, pts, replaces=replaced)
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
            self._book.frame(now)
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
            self._book.error = f"{type(exc).__name__}: {exc}"
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
        keep = max(self.config.stale_s, 2.5 * (result.published - result.submitted))
        return result if self.clock() - result.published <= keep else None

    def _work(self) -> None:
        if self.config.threads:
            limit_torch_threads(int(self.config.threads))
        while True:
            item = self._slot.take()
            if item is None:
                return
            try:
                rgb = cv2.cvtColor(item.frame_bgr, cv2.COLOR_BGR2RGB)
                result = self.recognize(
                    rgb, seq=item.seq, submitted=item.submitted, detections=self._reusable()
                )
                if result.detected:
                    with self._cond:
                        if self._boxes is None or result.submitted >= self._boxes[0]:
                            self._boxes = (result.submitted, [detection_of(f) for f in result.faces])
                self._offer_add_me(rgb, result)
            except Exception as exc:  # shown on the video and in the stats; the worker carries on
                self._book.error = f"{type(exc).__name__}: {exc}"
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
        allows it, and :class:`~facecore.errors.GalleryError` for a gallery this recognizer does not use.
        """
        name = gallery_name(gallery)
        model = find_gallery(self.models, name)
        self.add_me = AddMe(
            model.ref.name,
            person,
            margin=model.gallery.margin,
            count=count,
            spacing_s=spacing_s,
            timeout_s=timeout_s,
            on_enrolled=lambda _report: self.reload_gallery(name),
            clock=self.clock,
        )
        return self.add_me

    def reload_gallery(self, name: str) -> None:
        """Read gallery ``name`` again (after an enrollment): the next frames are matched against it.

        The embedder and the threshold of the model it replaces are kept; the swap is one
        assignment, so a worker classifying meanwhile finishes with the old gallery.
        """
        self.models = with_gallery_reloaded(self.models, name)

    def _offer_add_me(self, image_rgb: np.ndarray, result: LiveResult) -> None:
        """Hand a frame the detector ran on to the running "Add me" (worker threads only)."""
        add_me = self.add_me
        if add_me is None or not result.detected:
            return
        try:
            add_me.offer(image_rgb, [detection_of(f) for f in result.faces], result.submitted)
        except Exception as exc:  # noqa: BLE001 - shown in the stats; recognition carries on
            self._book.error = f"Add me: {type(exc).__name__}: {exc}"

    def _reusable(self) -> list[Detection] | None:
        """The faces found less than ``redetect_s`` ago, to classify again on a newer frame."""
        boxes = self._boxes  # another worker may replace it meanwhile: read it once
        if boxes is None or not boxes[1] or self.clock() - boxes[0] > self.config.redetect_s:
            return None
        return boxes[1]

    def _publish(self, result: LiveResult) -> None:
        with self._cond:
            if self.latest is not None and result.seq < self.latest.seq:
                return  # another worker already published a newer frame
            self._book.published(result)
            self.latest = result
        with contextlib.suppress(queue.Empty):
            self.results.get_nowait()  # the UI wants the newest result only
        with contextlib.suppress(queue.Full):
            self.results.put_nowait(result)

    # -- reading the state
    def stats(self) -> LiveStats:
        """The current :class:`~facecore.live.stats.LiveStats`."""
        now = self.clock()
        with self._cond:
            return self._book.stats(now, len(self.latest.faces) if self.latest else 0)

    def seen(self) -> list[dict[str, Any]]:
        """Names recognised so far (not Unknown): ``name``, ``model``, ``times``, ``best`` confidence."""
        with self._cond:
            return self._book.seen()

    @property
    def running(self) -> bool:
        """True while a worker thread is alive."""
        return self._slot.running

    # -- drawing
    def annotate(self, frame_bgr: np.ndarray, result: LiveResult | None, *, panel: bool = True) -> np.ndarray:
        """Draw ``result``'s boxes and labels, and (``panel``) the stats, on ``frame_bgr``; return it."""
        draw_faces(frame_bgr, result, many=len(self.models) > 1)
        if panel:
            draw_panel(frame_bgr, panel_lines(self.stats(), self.add_me, self.clock()))
        return frame_bgr

    # -- life cycle
    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers (after their current frames) and refuse further frames."""
        self._slot.close(timeout)

    def __enter__(self) -> LiveRecognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["LiveRecognizer"]
