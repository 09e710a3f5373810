"""Enrollment quality checks on real faces: sharp faces in, blurry, tiny, absent and repeated faces out."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecore.data.enroll import EnrollSession, QualityConfig, annotate, assess_frame, sharpness
from facecore.data.images import load_rgb
from facecore.detect.yunet import YuNetDetector
from facecore.errors import FacecoreError
from tests.helpers import LFW, YUNET


@pytest.fixture(scope="module")
def detector() -> YuNetDetector:
    if not YUNET.is_file():
        pytest.skip(f"real test assets not found at {YUNET}")
    return YuNetDetector(YUNET)


def face(person: str = "Colin_Powell", i: int = 0) -> np.ndarray:
    return load_rgb(sorted((LFW / person).glob("*.jpg"))[i])


def on_canvas(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` shrunk by ``scale`` on a grey 640x480 frame, as a face far from the camera."""
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 128, np.uint8)
    frame[100 : 100 + small.shape[0], 200 : 200 + small.shape[1]] = small
    return frame


def test_a_sharp_real_face_is_accepted(detector: YuNetDetector) -> None:
    verdict = assess_frame(face(), detector)
    assert verdict.accepted and verdict.code == "ok" and verdict.reason == "accepted"
    assert verdict.crop is not None and verdict.crop.shape == (256, 256, 3)
    assert verdict.sharpness is not None and verdict.sharpness > 1.0


def test_a_blurred_face_is_rejected_as_blurry(detector: YuNetDetector) -> None:
    image = face()
    blurred = cv2.GaussianBlur(image, (0, 0), 3.0)
    verdict = assess_frame(blurred, detector)
    assert verdict.code == "blurry" and "hold still" in verdict.reason
    assert verdict.sharpness < sharpness(assess_frame(image, detector).crop) / 3


def test_a_tiny_face_is_rejected_as_too_small(detector: YuNetDetector) -> None:
    verdict = assess_frame(on_canvas(face(), 0.4), detector)
    assert verdict.code == "too_small"
    assert "come closer" in verdict.reason and "need 80" in verdict.reason
    # The same face, large enough, passes the size check.
    assert assess_frame(face(), detector, QualityConfig(min_face=100)).code == "ok"


def test_frames_without_a_face_are_rejected(detector: YuNetDetector, assets: Path) -> None:
    dogs = load_rgb(assets / "detection" / "dogs.jpg")
    # At full resolution YuNet finds no human face among the dogs (see test_detect); at the
    # default 640 px it takes a dog's face for one, with a score too low to enroll.
    assert assess_frame(dogs, YuNetDetector(YUNET, max_side=1024)).code == "no_face"
    verdict = assess_frame(dogs, detector)
    assert verdict.code == "unclear" and "face the camera" in verdict.reason
    assert verdict.detection is not None and verdict.detection.score < 0.88
    wall = np.full((480, 640, 3), 90, np.uint8)
    verdict = assess_frame(wall, detector)
    assert verdict.code == "no_face" and verdict.crop is None and "no face found" in verdict.reason


def test_an_identical_frame_is_a_duplicate_and_a_new_pose_is_not(detector: YuNetDetector) -> None:
    session = EnrollSession(detector, target=5, interval=0)
    first = face(i=0)
    assert session.offer(first).accepted
    again = session.offer(first.copy())
    assert again.code == "duplicate" and again.difference == 0.0 and "turn your head" in again.reason
    slightly = np.clip(first.astype(np.int16) + 2, 0, 255).astype(np.uint8)  # a brighter sensor frame
    assert session.offer(slightly).code == "duplicate"
    assert session.offer(face(i=1)).accepted
    assert session.accepted == 2 and session.rejected["duplicate"] == 2
    crops = session.take_new()
    assert len(crops) == 2 and all(c.shape == (256, 256, 3) for c in crops)
    assert session.take_new() == []


def test_a_session_stops_at_its_target_and_throttles(detector: YuNetDetector) -> None:
    now = [0.0]
    session = EnrollSession(detector, target=3, interval=0.5, clock=lambda: now[0])
    verdicts = []
    for i in range(5):
        now[0] += 1.0
        verdicts.append(session.offer(face("Tony_Blair", i)).code)
    assert verdicts == ["ok", "ok", "ok", "full", "full"] and session.done
    # Within the interval the last verdict comes back without running the detector.
    session2 = EnrollSession(detector, target=3, interval=0.5, clock=lambda: now[0])
    first = session2.offer(face())
    assert session2.offer(face(i=1)) is first and session2.accepted == 1
    assert session2.offer(face(i=1), force=True).accepted
    with pytest.raises(FacecoreError, match="at least 1"):
        EnrollSession(detector, target=0)


def test_a_video_thread_feeds_the_session_and_the_page_polls_it(detector: YuNetDetector) -> None:
    session = EnrollSession(detector, target=4, interval=0)
    frames = [face("Hugo_Chavez", i) for i in range(6)]
    annotated: list[np.ndarray] = []

    def video() -> None:
        for f in frames:
            annotated.append(session.process(f))

    thread = threading.Thread(target=video)
    thread.start()
    thread.join(timeout=60)
    assert session.done and len(session.take_new()) == 4
    assert len(annotated) == 6 and all(a.shape == f.shape for a, f in zip(annotated, frames, strict=True))
    assert not np.array_equal(annotated[0], frames[0])  # the box and the verdict are drawn


def test_annotate_draws_the_box_and_leaves_the_input_alone(detector: YuNetDetector) -> None:
    image = face()
    copy = image.copy()
    verdict = assess_frame(image, detector)
    out = annotate(image, verdict, progress="1/20")
    assert np.array_equal(image, copy) and not np.array_equal(out, image)
    x, y, w, h = verdict.detection.box
    assert out[y, x + w // 2].tolist() == [40, 180, 60]  # green box on the top edge
    assert np.array_equal(annotate(image, None), image)


def test_quality_config_refuses_nonsense() -> None:
    with pytest.raises(FacecoreError, match="min_face"):
        QualityConfig(min_face=0)
    with pytest.raises(FacecoreError, match="negative"):
        QualityConfig(min_sharpness=-1)
    with pytest.raises(FacecoreError, match="min_score"):
        QualityConfig(min_score=2)


def test_real_faces_pass_the_clarity_check(detector: YuNetDetector) -> None:
    people = ["Colin_Powell", "Tony_Blair", "Hugo_Chavez", "Ariel_Sharon", "Gerhard_Schroeder"]
    verdicts = [assess_frame(face(p, i), detector) for p in people for i in range(4)]
    assert [v.code for v in verdicts] == ["ok"] * 20
