"""How a live recognizer works: :class:`LiveConfig`, with each setting's bounds, choices and help
in its field's metadata, read by :func:`setting` for the ``python -m facecore live`` arguments and
the Live page's widgets, and by :meth:`LiveConfig.checked` (importable without torch)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from facecore.errors import ConfigError

if TYPE_CHECKING:
    from facecore.detect.detection import Detector

#: how :class:`~facecore.live.recognizer.LiveRecognizer` classifies: ``auto`` picks the faster of
#: the other two per model
PRECISIONS = ("auto", "float32", "int8")
#: the workers the command line and the Live page start with: two frames at once (ResNet-50 int8
#: went from 8.8 to 15.7 recognitions/s on 2 cores, README), one on a single core
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)
#: the detectors fit for video (:func:`~facecore.live.detection.live_detector`)
DETECTORS = ("auto", "yunet", "haar")


def _meta(
    *,
    low: float | None = None,
    per_core: bool = False,
    choices: tuple[Any, ...] = (),
    options: tuple[Any, ...] = (),
    help: str | None = None,
    label: str = "",
    tip: str | None = None,
) -> dict[str, Any]:
    return {
        "low": low, "per_core": per_core, "choices": choices, "options": options, "help": help,
        "label": label, "tip": tip,
    }  # fmt: skip


@dataclass(frozen=True)
class LiveConfig:
    """How a :class:`~facecore.live.recognizer.LiveRecognizer` works (every field has a default).

    ``detector``: a :class:`~facecore.detect.detection.Detector` or a name for
    :func:`~facecore.live.detection.live_detector`. ``threshold``: None uses each run's calibrated
    threshold; a number applies to every model (the recognizer's ``threshold`` may be changed
    while it runs). ``max_faces``: faces classified per frame, the largest first.
    ``detect_side``: frames are scaled so their longer side is at most this for detection.
    ``threads``: each worker thread's torch intra-op threads
    (:func:`~facecore.live.precision.limit_torch_threads`; other threads keep theirs; None leaves
    them alone); 1 keeps a core free for video decoding and encoding.
    ``window_s``: the span the rates of the recognizer's ``stats()`` are measured over.
    ``stale_s``: how long a result is still drawn on new frames (longer when results come slowly).
    ``idle_stop_s``: the worker thread starts with the first frame and ends after this long without frames.
    ``redetect_s``: the worker reuses the faces it found for this long (classifying them again on
    the newest frame) before it runs the detector again; frames without faces are always searched.
    0 detects on every frame.
    ``device``: where runs given by name are loaded (``auto``, ``cpu``, ``cuda``, ``mps``).
    ``precision``: ``float32``; ``int8``, each model's int8 copy
    (:meth:`~facecore.recognize.models.LoadedModel.int8_model`, CPU only; a model that cannot be
    converted stays in float32 and says why in the recognizer's ``int8_problems``); or ``auto``,
    whichever of the two classifies a face faster here, timed once per model with ``threads``
    threads (the recognizer's ``precision_ms``). On 2 CPU cores int8 won for ResNet-50 (64 against
    135 ms) and float32 for the custom CNN (6 against 8 ms); off the CPU ``auto`` is float32.
    ``workers``: frames classified at the same time, each by its own worker thread (a result older
    than one already published is dropped); more than one uses the cores that one worker's
    single thread leaves idle, without the per-layer synchronisation of more torch threads.
    ``clock``: the time source (seconds; tests pass a fake one).

    Each field's metadata holds its bounds and help (:func:`setting`).
    """

    detector: Detector | str = field(default="auto", metadata=_meta(choices=DETECTORS))
    threshold: float | None = field(
        default=None, metadata=_meta(help="unknown threshold (default: each run's own)")
    )
    max_faces: int = field(
        default=5, metadata=_meta(low=1, help="classify at most this many faces per frame")
    )
    detect_side: int = field(
        default=320,
        metadata=_meta(
            low=64,
            options=(240, 320, 480, 640),
            help="detect on frames scaled to this longer side",
            label="Detect faces at (longer side, pixels)",
        ),
    )
    threads: int | None = field(
        default=1,
        metadata=_meta(
            low=1, per_core=True, help="torch threads per frame (default 1)", label="Torch threads per frame"
        ),
    )
    window_s: float = 2.0
    stale_s: float = 1.5
    idle_stop_s: float = 10.0
    redetect_s: float = 0.15
    device: str = field(default="auto", metadata=_meta(help="auto, cpu, cuda or mps"))
    precision: str = field(
        default="float32",
        metadata=_meta(
            choices=PRECISIONS,
            help="classify in float32, with int8 copies of the models (CPU), or auto (default): whichever "
            "is faster for each model on this machine, timed at the start",
            label="Precision",
            tip="int8: each model's int8 copy, calibrated on its own training faces, with the same top "
            "answer on nearly every face; the checkpoint is not changed. On a CPU it is about twice as "
            "fast for a ResNet-50, but slower than float32 for the small custom CNN.",
        ),
    )
    workers: int = field(
        default=1,
        metadata=_meta(
            low=1,
            per_core=True,
            help="frames recognised at once, each in its own thread (default 2, or 1 on one core)",
            label="Frames recognised at once",
            tip="Each in its own worker thread: a slow model (ResNet-50) names faces more often when "
            "a second frame is classified while the first one still is.",
        ),
    )
    clock: Callable[[], float] = time.monotonic

    def checked(self) -> LiveConfig:
        """This configuration with its counts raised to their lower bounds (as they always were:
        ``max_faces=0`` classifies one face); raises :class:`~facecore.errors.ConfigError` for an
        unknown precision or a threshold that is not a finite number."""
        if self.precision not in PRECISIONS:
            raise ConfigError(f"Precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}.")
        check_threshold(self.threshold)
        counts = ("max_faces", "detect_side", "workers")
        return replace(self, **{n: max(int(setting(n).low or 0), int(getattr(self, n))) for n in counts})


@dataclass(frozen=True)
class Setting:
    """One :class:`LiveConfig` field for a command line or a form: its ``default``, bounds (``low``,
    ``high``: None where there is none; ``high`` is the CPU count for per-core settings), the
    values it takes (``choices``) or suggests (``options``), the ``help`` of its command-line
    argument, and a widget's ``label`` and ``tip``."""

    name: str
    default: Any
    low: float | None
    high: float | None
    choices: tuple[Any, ...]
    options: tuple[Any, ...]
    help: str | None
    label: str
    tip: str | None


def setting(name: str) -> Setting:
    """The bounds, choices and help of :class:`LiveConfig` field ``name``."""
    found = {f.name: f for f in fields(LiveConfig)}.get(name)
    if found is None:
        raise KeyError(f"LiveConfig has no field {name!r}.")
    meta = {**_meta(), **found.metadata}
    high = (os.cpu_count() or 1) if meta["per_core"] else None
    default = None if found.default is MISSING else found.default
    keep = ("low", "choices", "options", "help", "label", "tip")
    return Setting(name=name, default=default, high=high, **{k: meta[k] for k in keep})


def check_threshold(value: float | None) -> float | None:
    """``value`` as a float (None stays None); raises :class:`~facecore.errors.ConfigError` when
    it is not a finite number."""
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise ConfigError(f"The threshold must be a finite number, got {value!r}.")
    return None if value is None else float(value)


__all__ = [
    "DEFAULT_WORKERS", "DETECTORS", "PRECISIONS", "LiveConfig", "Setting", "check_threshold", "setting",
]
