"""The Live page's "Add me" in the library: capture 5 faces of the person in view from the live
recognizer's frames, refuse frames without one clear face, enroll them, reload the gallery.

Real data throughout: a gallery ``team`` of Colin Powell and Tony Blair (5 LFW photos each, the
shipped sface embedder, no training) and video frames of Hugo Chavez, who is not in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facecore.data.images import load_rgb
from facecore.detect.detection import Detection
from facecore.errors import EnrollmentError, FacecoreError, ReadOnlyModeError
from facecore.gallery.enroll import enroll_add_me, enroll_photos
from facecore.gallery.store import load_gallery
from facecore.live.addme import DONE, ENROLLING, FAILED, NO_FACE, SEVERAL, AddMe, pick_face
from facecore.live.config import LiveConfig
from facecore.live.recognizer import LiveRecognizer
from facecore.live.video import face_video_frames
from facecore.mode import ALLOW_ENROLL_ENV, enroll_allowed
from tests.helpers import LFW, PHOTO, enroll_team, face_y4m, fc

NEWCOMER = "Hugo_Chavez"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def team(yunet_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Gallery ``team``: 5 photos each of Colin Powell and Tony Blair (not the newcomer)."""
    monkeypatch.delenv("FACECORE_MODE", raising=False)
    monkeypatch.delenv(ALLOW_ENROLL_ENV, raising=False)
    return enroll_team("team")


@pytest.fixture
def frames() -> list[np.ndarray]:
    """BGR 640x480 frames of the newcomer's LFW photos, one photo per frame, drifting sideways."""
    photos = [load_rgb(p) for p in sorted((LFW / NEWCOMER).glob("*.jpg"))[:8]]
    return [np.ascontiguousarray(f[:, :, ::-1]) for f in face_video_frames(photos, frames_per_image=1)]


@pytest.fixture
def recognizer(team: str) -> Iterator[LiveRecognizer]:
    clock = FakeClock()
    with LiveRecognizer([f"gallery:{team}"], LiveConfig(clock=clock, redetect_s=0)) as rec:
        rec.fake_clock = clock  # type: ignore[attr-defined]
        yield rec


def names(result) -> list[str]:
    return [p.label for face in result.faces for p in face.predictions]


def box(x: int, side: int) -> Detection:
    return Detection((x, 50, side, side), 0.9)


def test_pick_face_takes_the_one_face_or_the_clearly_largest() -> None:
    assert pick_face([]) == (None, NO_FACE)
    alone = box(10, 100)
    assert pick_face([alone]) == (alone, "ok")
    near, far = box(10, 200), box(300, 100)  # 4x the area: the person in front, someone behind
    assert pick_face([far, near]) == (near, "ok")
    assert pick_face([box(10, 110), box(300, 100)]) == (None, SEVERAL)  # 1.2x: whose face?


def test_add_me_captures_5_spaced_faces_and_refuses_frames_without_one_clear_face(team: str) -> None:
    clock = FakeClock()
    enrolled: list[tuple[str, str, int]] = []

    def enroll(gallery: str, person: str, crops: list[np.ndarray]):
        enrolled.append((gallery, person, len(crops)))
        return enroll_add_me(gallery, person, crops)

    add = AddMe(team, "Ada", margin=load_gallery(team).margin, spacing_s=0.25, clock=clock, enroll=enroll)
    image = np.full((480, 640, 3), 120, np.uint8)
    image[100:300, 200:400] = np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)
    assert add.offer(image, [], clock.t) == NO_FACE
    assert add.offer(image, [box(200, 110), box(400, 100)], clock.t) == SEVERAL
    verdicts = []
    for _ in range(9):  # a frame every 0.1 s: one face taken every 0.3 s (0.25 s apart at least)
        clock.t += 0.1
        image[100:300, 200:400] += 7  # the person moves: not the same crop twice
        verdicts.append(add.offer(image, [box(200, 200)], clock.t))
        if len(add.crops) == 3:
            assert add.progress().line().startswith("Adding Ada: 3/5 faces")
    assert verdicts.count("ok") == 3 and verdicts.count("wait") == 6
    assert np.diff(add.times).min() >= 0.25
    progress = add.progress()
    assert (progress.captured, progress.count, progress.refused) == (3, 5, {NO_FACE: 1, SEVERAL: 1})
    assert "no face" in progress.line() and "several faces" in progress.line()
    for _ in range(2):
        clock.t += 0.3
        image[100:300, 200:400] += 7
        add.offer(image, [box(200, 200)], clock.t)
    assert add.progress().state in (ENROLLING, DONE)
    done = add.wait(timeout=60)
    assert done.state == DONE, done
    assert done.message == "Added Ada (5 faces) to gallery team"
    assert enrolled == [("team", "Ada", 5)] and load_gallery(team).counts()["Ada"] == 5
    assert add.offer(image, [box(200, 200)], clock.t + 1) == "done"  # nothing more is taken


def test_a_capture_with_no_face_in_view_fails_in_time_and_says_why(team: str) -> None:
    clock = FakeClock()
    add = AddMe(team, "Ada", margin=0.25, clock=clock, timeout_s=10)
    empty = np.full((480, 640, 3), 120, np.uint8)
    for _ in range(20):
        clock.t += 0.4
        add.offer(empty, [], clock.t)
    clock.t += 3
    progress = add.progress()
    assert progress.state == FAILED and progress.captured == 0
    assert "0/5 faces captured in 10 s" in progress.message and "20 with no face" in progress.message
    assert load_gallery(team).people == ["Colin_Powell", "Tony_Blair"]  # nothing was written
    quiet = AddMe(team, "Ada", margin=0.25, clock=clock, timeout_s=5)
    clock.t += 6
    assert "no camera frames arrived" in quiet.progress().message


def test_names_are_checked_before_anyone_poses(team: str) -> None:
    with pytest.raises(EnrollmentError, match="Type the name"):
        AddMe(team, "  ", margin=0.25)
    with pytest.raises(FacecoreError, match="Unknown"):
        AddMe(team, "Unknown", margin=0.25)
    with pytest.raises(FacecoreError, match="no usable characters"):
        AddMe(team, "///", margin=0.25)
    assert AddMe(team, "../Ada", margin=0.25).person == "_Ada"  # a file name, never a path


def test_the_live_recognizer_adds_the_newcomer_and_names_him_on_the_next_frames(
    recognizer: LiveRecognizer, frames: list[np.ndarray], team: str
) -> None:
    clock = recognizer.fake_clock  # type: ignore[attr-defined]
    model_before = recognizer.models[0]
    recognizer.process_now(frames[0])
    assert names(recognizer.latest) == ["Unknown"]  # a stranger to the gallery
    add = recognizer.start_add_me(f"gallery:{team}", NEWCOMER)
    for frame in frames[1:7]:  # the worker path offers every frame the detector ran on
        clock.t += 0.35
        recognizer.process_now(frame)
    done = add.wait(timeout=60)
    assert done.state == DONE and done.message == f"Added {NEWCOMER} (5 faces) to gallery team", done
    assert load_gallery(team).counts()[NEWCOMER] == 5
    assert recognizer.models[0] is not model_before  # the gallery was reloaded in place
    assert recognizer.models[0].threshold == model_before.threshold
    recognizer.process_now(frames[7])  # a photo that was not captured
    assert names(recognizer.latest) == [NEWCOMER]
    panel_lines = recognizer.add_me.progress().line()
    assert panel_lines.startswith(f"Added {NEWCOMER}")


def test_the_threaded_worker_feeds_add_me_too(team: str, frames: list[np.ndarray]) -> None:
    """The real path of the Live page: frames through :meth:`process` (the frame callback)."""
    import time

    with LiveRecognizer([f"gallery:{team}"], LiveConfig(redetect_s=0)) as rec:
        add = rec.start_add_me(team, NEWCOMER, spacing_s=0.3)
        started = time.monotonic()
        i = 0
        while not add.progress().finished and time.monotonic() - started < 60:
            rec.process(frames[i % len(frames)])
            i += 1
            time.sleep(1 / 15)
        done = add.wait(timeout=30)
        assert done.state == DONE, done
        assert np.diff(add.times).min() >= 0.3
        wait_until = time.monotonic() + 20
        while time.monotonic() < wait_until:
            rec.process(frames[i % len(frames)])
            i += 1
            time.sleep(1 / 15)
            if rec.latest is not None and names(rec.latest) == [NEWCOMER]:
                break
        assert names(rec.latest) == [NEWCOMER]


def test_a_real_group_photo_is_refused_and_a_lone_face_is_taken(
    recognizer: LiveRecognizer, frames: list[np.ndarray], team: str
) -> None:
    """Real detections: 7 faces of similar size (whose?) are refused; the newcomer alone is taken."""
    import cv2

    clock = recognizer.fake_clock  # type: ignore[attr-defined]
    add = recognizer.start_add_me(team, NEWCOMER)
    group = cv2.cvtColor(load_rgb(PHOTO), cv2.COLOR_RGB2BGR)
    recognizer.process_now(group)
    assert len(recognizer.latest.faces) >= 2
    clock.t += 0.35
    recognizer.process_now(np.full((480, 640, 3), 128, np.uint8))  # nobody in view
    clock.t += 0.35
    recognizer.process_now(frames[0])
    progress = add.progress()
    assert progress.captured == 1 and progress.refused == {NO_FACE: 1, SEVERAL: 1}, progress


def test_start_add_me_needs_a_gallery_the_video_uses(recognizer: LiveRecognizer) -> None:
    with pytest.raises(FacecoreError, match="does not recognise with gallery 'other'"):
        recognizer.start_add_me("other", "Ada")


def test_presentation_mode_refuses_add_me_unless_the_presenter_allows_it(
    recognizer: LiveRecognizer, team: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crops = [np.full((256, 256, 3), 100 + i, np.uint8) for i in range(2)]
    monkeypatch.setenv("FACECORE_MODE", "demo")
    assert not enroll_allowed()
    with pytest.raises(ReadOnlyModeError, match=f"set {ALLOW_ENROLL_ENV}=1 .*secrets.toml"):
        recognizer.start_add_me(team, NEWCOMER)
    with pytest.raises(ReadOnlyModeError):  # the library refuses even when no AddMe asked first
        enroll_add_me(team, NEWCOMER, crops)
    for value in ("0", "no", ""):
        monkeypatch.setenv(ALLOW_ENROLL_ENV, value)
        assert not enroll_allowed()
    monkeypatch.setenv(ALLOW_ENROLL_ENV, "true")
    assert enroll_allowed()
    recognizer.start_add_me(team, NEWCOMER)
    assert enroll_add_me(team, NEWCOMER, crops).added == {NEWCOMER: 2}
    # the setting allows this one change only: other enrollments and a new gallery stay refused
    photo = sorted((LFW / NEWCOMER).glob("*.jpg"))[0]
    with pytest.raises(ReadOnlyModeError, match="Enrolling faces into a gallery is turned off"):
        enroll_photos(team, NEWCOMER, [(photo.name, photo)])
    with pytest.raises(FacecoreError, match="No gallery 'new'"):
        enroll_add_me("new", NEWCOMER, crops)


def test_cli_live_enroll_adds_the_person_in_a_video(team: str, yunet_home: Path, tmp_path: Path) -> None:
    import json

    photos = tmp_path / "hugo"
    photos.mkdir()
    for p in sorted((LFW / NEWCOMER).glob("*.jpg"))[:8]:
        (photos / p.name).write_bytes(p.read_bytes())
    video = face_y4m(tmp_path / "hugo.y4m", photos, fps=15, frames_per_image=8)  # 4.3 s
    proc = fc("live", str(video), "--gallery", team, "--enroll", NEWCOMER, "--json", home=yunet_home)
    summary = json.loads(proc.stdout)
    assert summary["add_me"]["state"] == "done", summary["add_me"]
    assert summary["add_me"]["message"].startswith(f"Added {NEWCOMER} (5 faces) to gallery team")
    assert load_gallery(team).counts()[NEWCOMER] == 5
    assert any(r["name"] == NEWCOMER for r in summary["seen"])  # named once the gallery was reloaded
    refused = fc(
        "live",
        str(video),
        "--gallery",
        team,
        "--enroll",
        "Someone",
        home=yunet_home,
        check=False,
        env={"FACECORE_MODE": "demo"},
    )
    assert refused.returncode == 2 and ALLOW_ENROLL_ENV in refused.stderr, refused.stderr
