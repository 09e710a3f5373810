"""The Live page's "Add me": enroll the person in front of the camera into the gallery in use.

:meth:`LiveRecognizer.start_add_me <facecore.live.recognizer.LiveRecognizer.start_add_me>` starts
an :class:`AddMe`. The recognizer's worker offers it every frame it ran the detector on
(:meth:`AddMe.offer`, never from the frame callback, never touching a UI); it keeps the one face
in view (or the clearly largest: :data:`~facecore.gallery.enroll.CLEAR_LARGEST` times the area of
the next), refuses frames with no face or several faces of similar size, and takes at most one
face every ``spacing_s`` seconds so the captures are not the same frame. With ``count`` faces it
enrolls them in a thread of its own (:func:`~facecore.gallery.enroll.enroll_add_me`: atomic, and
refused in presentation mode unless the presenter allows it) and calls ``on_enrolled`` (the
recognizer reloads the gallery, so the person is named on the next frames). Whoever wants to
show it polls :meth:`AddMe.progress`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facecore.constants import CROP_SIZE
from facecore.detect.crop import crop_face
from facecore.detect.detection import Detection
from facecore.errors import ConfigError, EnrollmentError, FacecoreError
from facecore.gallery.enroll import CLEAR_LARGEST, enroll_add_me
from facecore.gallery.store import EnrollReport, person_name
from facecore.mode import require_enroll_allowed

CAPTURING, ENROLLING, DONE, FAILED = "capturing", "enrolling", "done", "failed"
#: refusal reasons, as :attr:`AddMeProgress.refused` counts them
NO_FACE, SEVERAL = "no face", "several faces of similar size"


@dataclass(frozen=True)
class AddMeProgress:
    """Where an "Add me" stands: ``state`` is capturing, enrolling, done or failed."""

    gallery: str
    person: str
    state: str
    captured: int
    count: int
    refused: dict[str, int] = field(default_factory=dict)
    message: str = ""
    report: dict[str, Any] | None = None
    seconds: float = 0.0  # from the start to done or failed (or to now)

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED)

    def line(self) -> str:
        """One line for a page, a terminal or the video, e.g. ``Adding Ada: 3/5 faces``."""
        if self.finished:
            return self.message
        if self.state == ENROLLING:
            return f"Adding {self.person}: {self.captured}/{self.count} faces captured, enrolling..."
        skipped = ", ".join(f"{n} with {why}" for why, n in self.refused.items() if n)
        return f"Adding {self.person}: {self.captured}/{self.count} faces" + (
            f" (frames skipped: {skipped})" if skipped else ""
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def pick_face(
    detections: Sequence[Detection], clear_largest: float | None = None
) -> tuple[Detection | None, str]:
    """The person's face among a frame's ``detections`` and ``"ok"``, or None and why not.

    One face: that one. Several: the largest when its area is at least ``clear_largest`` (default
    :data:`~facecore.gallery.enroll.CLEAR_LARGEST`) times the next one's; else nobody can tell whose
    face to add, and the frame is refused.
    """
    if not detections:
        return None, NO_FACE
    if len(detections) == 1:
        return detections[0], "ok"
    first, second = sorted(detections, key=lambda d: d.area, reverse=True)[:2]
    if first.area < (clear_largest or CLEAR_LARGEST) * max(second.area, 1):
        return None, SEVERAL
    return first, "ok"


class AddMe:
    """One "Add me": capture ``count`` faces of the person in view, then enroll them (module docstring).

    ``margin``: the gallery's crop margin. ``timeout_s``: give up when the faces are not captured
    in this long. ``on_enrolled``: called with the report once the faces are in the gallery (the
    recognizer's gallery reload); an exception it raises fails the add. ``enroll``: the library
    call that enrolls (tests may wrap it). ``clock``: seconds.
    """

    def __init__(
        self,
        gallery: str,
        person: str,
        *,
        margin: float,
        count: int = 5,
        spacing_s: float = 0.3,
        timeout_s: float = 30.0,
        on_enrolled: Callable[[EnrollReport], None] | None = None,
        enroll: Callable[[str, str, list[np.ndarray]], EnrollReport] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        require_enroll_allowed()  # at once: a refused add is said before anyone poses
        if not str(person).strip():
            raise EnrollmentError("Type the name to add first.")
        if count < 1 or spacing_s < 0 or timeout_s <= 0:
            raise ConfigError("Add me needs count >= 1, spacing_s >= 0 and timeout_s > 0.")
        self.gallery = gallery
        self.person = person_name(person)
        self.margin = float(margin)
        self.count = int(count)
        self.spacing_s = float(spacing_s)
        self.timeout_s = float(timeout_s)
        self.on_enrolled = on_enrolled
        self._enroll = enroll or enroll_add_me
        self.clock = clock
        self.started = clock()
        self.crops: list[np.ndarray] = []
        self.times: list[float] = []  # when each captured frame entered the recognizer
        self.frames = 0  # frames offered
        self._refused = {NO_FACE: 0, SEVERAL: 0}
        self._state = CAPTURING
        self._message = ""
        self._report: EnrollReport | None = None
        self._ended: float | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- fed by the recognizer's worker
    def offer(self, image_rgb: np.ndarray, detections: Sequence[Detection], when: float | None = None) -> str:
        """Take the person's face from this RGB frame when it is due; return ``"ok"`` (taken),
        ``"wait"`` (too soon after the last one), ``"done"`` (not capturing any more) or the reason
        it was refused (:data:`NO_FACE`, :data:`SEVERAL`). ``when``: the frame's time (default now)."""
        when = self.clock() if when is None else when
        with self._lock:
            if self._state != CAPTURING or self._timed_out():
                return "done"
            self.frames += 1
            if self.times and when - self.times[-1] < self.spacing_s:
                return "wait"
            face, verdict = pick_face(detections)
            if face is None:
                self._refused[verdict] += 1
                return verdict
            self.crops.append(crop_face(image_rgb, face, margin=self.margin, size=CROP_SIZE))
            self.times.append(when)
            if len(self.crops) < self.count:
                return "ok"
            self._state = ENROLLING
            self._thread = threading.Thread(target=self._finish, name="facecore-add-me", daemon=True)
            self._thread.start()
            return "ok"

    def _timed_out(self) -> bool:
        """Under the lock: fail the capture once ``timeout_s`` passed (True when it did)."""
        if self._state != CAPTURING or self.clock() - self.started <= self.timeout_s:
            return False
        skipped = ", ".join(f"{n} with {why}" for why, n in self._refused.items() if n)
        if not self.frames:
            why = "no camera frames arrived: start the video (START) and try again."
        else:
            why = (
                f"{self.frames} frames seen"
                + (f", {skipped}" if skipped else "")
                + ". Stand alone in front of the camera, face it, and try again."
            )
        self._fail(
            f"Could not add {self.person}: only {len(self.crops)}/{self.count} faces captured in "
            f"{self.timeout_s:g} s; {why}"
        )
        return True

    def _fail(self, message: str) -> None:
        self._state, self._message, self._ended = FAILED, message, self.clock()

    def _finish(self) -> None:
        try:
            report = self._enroll(self.gallery, self.person, list(self.crops))
            if self.on_enrolled is not None:
                self.on_enrolled(report)
        except FacecoreError as exc:
            with self._lock:
                self._fail(f"Could not add {self.person}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - shown to the user, the video carries on
            with self._lock:
                self._fail(f"Could not add {self.person}: {type(exc).__name__}: {exc}")
            return
        added = report.added.get(self.person, 0)
        same = f"; {report.duplicates} identical faces skipped" if report.duplicates else ""
        with self._lock:
            self._report = report
            self._state, self._ended = DONE, self.clock()
            faces = f"{added} face{'s' if added != 1 else ''}{same}"
            self._message = f"Added {self.person} ({faces}) to gallery {report.gallery}"

    # -- read by whoever shows it
    def progress(self) -> AddMeProgress:
        """The current :class:`AddMeProgress` (a capture past its time fails here too)."""
        with self._lock:
            self._timed_out()
            end = self._ended if self._ended is not None else self.clock()
            return AddMeProgress(
                gallery=self.gallery,
                person=self.person,
                state=self._state,
                captured=len(self.crops),
                count=self.count,
                refused=dict(self._refused),
                message=self._message,
                report=self._report.to_dict() if self._report else None,
                seconds=round(end - self.started, 3),
            )

    def wait(self, timeout: float | None = None) -> AddMeProgress:
        """Wait for the enrollment thread (when it started) and return the progress."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.progress()


__all__ = ["AddMe", "AddMeProgress", "CAPTURING", "DONE", "ENROLLING", "FAILED", "pick_face"]
