"""Live recognition without a browser: real LFW faces in a real .y4m video, a briefly trained CNN.

One custom_cnn run is trained once for the module on three real people plus Unknown (no
augmentation, lr 1e-3: it learns these faces within a few epochs on 2 cores). The video shows
Colin Powell's photos from the training folder, scaled into 640x480 frames that drift sideways.
The video comes from :func:`tests.helpers.face_y4m`, which the browser tests use too.
"""

from __future__ import annotations

import copy
import shutil
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest

from facecore.data.images import load_rgb
from facecore.errors import FacecoreError, VideoError
from facecore.live.config import LiveConfig
from facecore.live.ice import parse_ice_servers, rtc_configuration
from facecore.live.recognizer import LiveRecognizer
from facecore.live.runs import default_runs
from facecore.live.video import VideoSource, face_video_frames, read_y4m, write_y4m, y4m_info
from facecore.live.video_loop import run_video
from facecore.recognize.models import LoadedModel, clear_cache, load_run
from facecore.recognize.runs import Run
from tests.helpers import PERSON, face_y4m

PEOPLE = {"Colin_Powell": 8, "Tony_Blair": 8, "Hugo_Chavez": 8}


@pytest.fixture(scope="module")
def trained(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A copy of the session's trained workspace (dataset ``faces``, run ``tiny-cnn``) and Colin's video."""
    root = tmp_path_factory.mktemp("live")
    home = root / "home"
    shutil.copytree(trained_template, home)
    src = trained_template.parent / "src"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACECORE_HOME", str(home))
        mp.delenv("FACECORE_YUNET", raising=False)
        clear_cache()
        video = face_y4m(root / "colin.y4m", src / PERSON, frames_per_image=4)
        yield SimpleNamespace(home=home, run=home / "models" / "tiny-cnn", src=src, video=video)
        clear_cache()


@pytest.fixture
def model(trained: SimpleNamespace) -> LoadedModel:
    return load_run(trained.run)


@pytest.fixture
def frames(trained: SimpleNamespace) -> list[np.ndarray]:
    """The video's frames in BGR, as a camera callback gets them (``to_ndarray(format="bgr24")``)."""
    return [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in read_y4m(trained.video)]


class Slow:
    """A model whose probabilities() waits ``delay`` seconds first (and says when it started)."""

    def __init__(self, model: LoadedModel, delay: float) -> None:
        self.model = copy.copy(model)
        self.started = threading.Event()
        self.calls: list[int] = []  # the thread of each call
        original = model.probabilities

        def probabilities(crops, **kw):
            self.calls.append(threading.get_ident())
            self.started.set()
            time.sleep(delay)
            return original(crops, **kw)

        self.model.probabilities = probabilities  # type: ignore[method-assign]


# --- video files ------------------------------------------------------------------------------


def test_y4m_round_trip_and_header(tmp_path: Path, trained: SimpleNamespace) -> None:
    photos = [load_rgb(p) for p in sorted((trained.src / PERSON).glob("*.jpg"))[:2]]
    frames = list(face_video_frames(photos, frames_per_image=4))
    assert len(frames) == 8 and frames[0].shape == (480, 640, 3)
    assert not np.array_equal(frames[0], frames[1])  # the photo drifts like a camera picture
    path = tmp_path / "clip.y4m"
    assert write_y4m(path, frames, fps=15) == 8
    assert path.read_bytes().startswith(b"YUV4MPEG2 W640 H480 F15:1 Ip A1:1 C420jpeg\n")
    assert y4m_info(path) == (640, 480, 15.0)
    back = list(read_y4m(path))
    assert len(back) == 8
    assert np.abs(back[3].astype(int) - frames[3].astype(int)).mean() < 3  # 4:2:0 loses a little colour
    with pytest.raises(ValueError, match="even"):
        write_y4m(tmp_path / "odd.y4m", [np.zeros((5, 6, 3), np.uint8)])
    with pytest.raises(VideoError, match="no such video"):
        VideoSource(str(tmp_path / "missing.mp4"))


# --- the recognizer ---------------------------------------------------------------------------


def test_recognizer_names_the_person_in_real_video_frames(model: LoadedModel, frames: list) -> None:
    recognizer = LiveRecognizer([model], LiveConfig(threshold=0.0))
    labels = Counter()
    for bgr in frames:
        result = recognizer.recognize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        assert result.faces, "YuNet finds the face in every frame"
        x, y, w, h = result.faces[0].box
        assert 150 < x + w / 2 < 490 and 120 < y + h / 2 < 360 and w > 80  # the big face in the middle
        (prediction,) = result.faces[0].predictions
        assert prediction.label in model.classes and 0 <= prediction.confidence <= 1
        labels[prediction.label] += 1
    assert labels.most_common(1)[0][0] == PERSON, labels
    assert labels[PERSON] >= 0.6 * len(frames), labels


def test_process_returns_at_once_while_a_slow_classifier_runs(model: LoadedModel, frames: list) -> None:
    slow = Slow(model, delay=0.4)
    with LiveRecognizer([slow.model], LiveConfig(threshold=0.0)) as recognizer:
        took = []
        outputs = []
        for i, bgr in enumerate(frames[:30]):
            start = time.perf_counter()
            outputs.append(recognizer.process(bgr, pts=i / 30))
            took.append(time.perf_counter() - start)
            time.sleep(1 / 30)
        # the classifier takes 0.4 s a frame; process() only copies, queues and draws
        assert statistics.median(took) < 0.02 and max(took) < 0.2, f"slowest {max(took) * 1000:.0f} ms"
        stats = recognizer.stats()
        assert stats.frames == 30 and stats.dropped > 15 and stats.recognised <= 4
        assert 8 < stats.video_fps < 40
        assert outputs[-1].shape == frames[0].shape and not np.array_equal(outputs[-1], frames[29])


def test_the_newest_frame_wins_and_stale_frames_are_dropped(model: LoadedModel, frames: list) -> None:
    slow = Slow(model, delay=0.5)
    with LiveRecognizer([slow.model], LiveConfig(threshold=0.0)) as recognizer:
        recognizer.submit(frames[0])
        assert slow.started.wait(10)  # the worker took frame 1 and is classifying it
        for bgr in frames[1:20]:
            recognizer.submit(bgr)  # frames 2..20 while it is busy: each replaces the last
        first = recognizer.results.get(timeout=10)
        second = recognizer.results.get(timeout=10)
        assert (first.seq, second.seq) == (1, 20)
        stats = recognizer.stats()
        assert stats.recognised == 2 and stats.dropped == 18 and recognizer.latest is second
        assert second.faces and second.published - second.submitted < 2.0  # no backlog was worked off
        assert stats.inference_ms["custom_cnn"] >= 500


def test_two_workers_classify_two_frames_at_once_and_publish_in_order(
    model: LoadedModel, frames: list
) -> None:
    """With ``workers=2`` a second frame is classified while the first still is: twice the
    recognitions of a slow model, and a result never replaces a newer one."""
    slow = Slow(model, delay=0.3)
    published: list[int] = []
    config = LiveConfig(threshold=0.0, workers=2, redetect_s=10.0)
    with LiveRecognizer([slow.model], config) as recognizer:
        original = recognizer._publish

        def publish(result):
            original(result)
            published.append(recognizer.latest.seq)

        recognizer._publish = publish  # type: ignore[method-assign]
        for i in range(60):
            recognizer.process(frames[i % len(frames)], pts=i / 30)
            time.sleep(1 / 30)
        stats = recognizer.stats()
        assert len(set(slow.calls)) == 2, "both workers classified frames"
        # 2 s of frames, 0.3 s per frame: one worker manages at most 7, two about twice that
        assert stats.recognised >= 9, stats
        # latest after each publish: never goes back (an older result that finishes later is dropped,
        # which leaves latest as it was and repeats its seq here)
        assert published == sorted(published) and len(set(published)) >= 5
        named = recognizer.latest.faces[0].predictions[0]
        assert named.raw_label == PERSON


def test_results_reach_the_queue_and_the_names_seen(model: LoadedModel, frames: list) -> None:
    with LiveRecognizer([model], LiveConfig(threshold=0.0)) as recognizer:
        for bgr in frames[:12]:
            recognizer.process(bgr)
            time.sleep(0.05)
        result = recognizer.results.get(timeout=10)
        rows = result.rows()
        assert rows and set(rows[0]) == {"face", "model", "name", "confidence"}
        assert rows[0]["model"] == "custom_cnn" and rows[0]["name"] in model.classes
        seen = recognizer.seen()
        named = {r["name"] for r in rows if r["name"] != "Unknown"}
        assert named <= {s["name"] for s in seen} <= set(model.classes) - {"Unknown"}
        assert all(s["times"] >= 1 and 0 < s["best"] <= 1 for s in seen)
        assert sum(s["times"] for s in seen) <= recognizer.stats().recognised * recognizer.max_faces
        assert recognizer.stats().line().startswith("video ")


def test_three_models_give_three_labels_per_face(trained: SimpleNamespace, frames: list) -> None:
    runs = [trained.run]
    for name in ("live-cnn-b", "live-cnn-c"):
        copy_dir = trained.home / "models" / name
        if not copy_dir.exists():
            shutil.copytree(trained.run, copy_dir)
        runs.append(copy_dir)
    recognizer = LiveRecognizer(runs, LiveConfig(threshold=0.0))
    result = recognizer.recognize(cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB))
    assert [len(f.predictions) for f in result.faces][:1] == [3]
    assert len(result.inference_ms) == 3  # timed per model (named by run when models repeat)
    plain = recognizer.annotate(frames[0].copy(), None, panel=False)
    drawn = recognizer.annotate(frames[0].copy(), result, panel=False)
    x, y, w, h = result.faces[0].box
    above = (slice(max(0, y - 66), y), slice(x, x + w))
    assert np.array_equal(plain, frames[0]) and not np.array_equal(drawn[above], frames[0][above])


def test_threshold_turns_names_into_unknown(model: LoadedModel, frames: list) -> None:
    recognizer = LiveRecognizer([model], LiveConfig(threshold=0.0))
    rgb = cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB)
    named = recognizer.recognize(rgb).faces[0].predictions[0]
    assert named.label == named.raw_label and not named.unknown or named.raw_label == "Unknown"
    recognizer.threshold = 1.01
    assert all(p.label == "Unknown" for f in recognizer.recognize(rgb).faces for p in f.predictions)
    with pytest.raises(FacecoreError):
        recognizer.threshold = float("nan")


def test_av_callback_keeps_the_frame_timing(model: LoadedModel, frames: list) -> None:
    with LiveRecognizer([model]) as recognizer:
        frame = av.VideoFrame.from_ndarray(frames[0], format="bgr24")
        frame.pts, frame.time_base = 3000, Fraction(1, 90_000)
        out = recognizer.av_callback(frame)
        assert isinstance(out, av.VideoFrame) and (out.width, out.height) == (640, 480)
        assert (out.pts, out.time_base) == (3000, Fraction(1, 90_000))
        assert not np.array_equal(out.to_ndarray(format="bgr24"), frames[0])  # the stats panel


def test_worker_stops_when_idle_and_restarts(model: LoadedModel, frames: list) -> None:
    recognizer = LiveRecognizer([model], LiveConfig(idle_stop_s=0.3))
    recognizer.submit(frames[0])
    recognizer.results.get(timeout=10)
    deadline = time.monotonic() + 5
    while recognizer.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not recognizer.running
    recognizer.submit(frames[1])
    assert recognizer.results.get(timeout=10).seq == 2
    recognizer.close()
    assert recognizer.submit(frames[2]) == 0  # a closed recognizer lets frames through untouched
    assert recognizer.process(frames[2]).shape == frames[2].shape


def test_lag_grows_only_when_the_callback_falls_behind_the_camera(model: LoadedModel, frames: list) -> None:
    now = [10.0]
    with LiveRecognizer([model], LiveConfig(clock=lambda: now[0])) as recognizer:
        for i in range(30):  # frames handed over in step with a 30 fps camera's clock
            now[0] += 1 / 30
            recognizer.submit(frames[0], pts=i / 30)
        assert recognizer.stats().lag_ms == pytest.approx(0, abs=0.1)
        for i in range(30, 60):  # each frame 10 ms later than the one before
            now[0] += 1 / 30 + 0.010
            recognizer.submit(frames[0], pts=i / 30)
        assert recognizer.stats().lag_ms == pytest.approx(155, abs=0.1)  # mean of 10, 20, ..., 300 ms


def test_stale_results_are_not_drawn(model: LoadedModel, frames: list) -> None:
    now = [100.0]
    recognizer = LiveRecognizer([model], LiveConfig(stale_s=1.5, clock=lambda: now[0]))
    result = recognizer.recognize(cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB))
    recognizer._publish(result)
    assert recognizer.current() is result
    now[0] += 2.0
    assert recognizer.current() is None


# --- offline video (the CLI's engine) -----------------------------------------------------------


def test_run_video_paces_a_file_and_writes_the_annotated_copy(
    trained: SimpleNamespace, model: LoadedModel, tmp_path: Path
) -> None:
    lines: list[str] = []
    out = tmp_path / "annotated.y4m"
    with LiveRecognizer([model], LiveConfig(threshold=0.0)) as recognizer:
        summary = run_video(str(trained.video), recognizer, out=out, report=lines.append)
    n = len(list(read_y4m(trained.video)))
    assert len(list(read_y4m(out))) == n and summary["stats"]["frames"] == n
    assert 1 <= summary["stats"]["recognised"] <= n
    assert summary["seconds"] >= n / 15 - 0.5  # played at the file's 15 frames per second
    assert lines and "recognition" in lines[-1] and "faces:" in lines[-1]
    assert summary["seen"] and summary["seen"][0]["name"] == PERSON


def test_run_video_every_frame_to_mp4(trained: SimpleNamespace, model: LoadedModel, tmp_path: Path) -> None:
    out = tmp_path / "annotated.mp4"
    with LiveRecognizer([model], LiveConfig(threshold=0.0)) as recognizer:
        summary = run_video(str(trained.video), recognizer, out=out, every_frame=True, report=lambda _: None)
    with VideoSource(str(out)) as video:
        count = sum(1 for _ in video)
    assert summary["stats"]["recognised"] == summary["stats"]["frames"] == count
    assert summary["stats"]["dropped"] == 0


# --- ICE servers and default runs ---------------------------------------------------------------


def test_ice_servers_from_env_or_secrets() -> None:
    config, source = rtc_configuration()
    assert config == {"iceServers": []} and "direct connections only" in source
    env = '[{"urls": "stun:stun.l.google.com:19302"}]'
    config, source = rtc_configuration(env=env, secret=[{"urls": "stun:ignored.example.org"}])
    assert config == {"iceServers": [{"urls": ["stun:stun.l.google.com:19302"]}]}
    assert "FACECORE_ICE_SERVERS" in source
    turn = [{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]
    config, source = rtc_configuration(secret=turn)
    assert config["iceServers"] == turn and "secrets.toml" in source
    assert parse_ice_servers({"iceServers": turn}, source="x") == turn
    for bad, message in (
        ("[{", "not valid JSON"),
        ('{"urls": "http://example.org"}', "stun:, stuns:, turn: or turns:"),
        ('[{"urls": ["turn:t.example.org"]}]', "needs 'username' and 'credential'"),
        ("5", "expected a list"),
    ):
        with pytest.raises(FacecoreError, match=message) as info:
            rtc_configuration(env=bad)
        assert "FACECORE_ICE_SERVERS" in str(info.value)


def test_default_runs_prefer_the_newest_finished_run_of_each_model() -> None:
    runs = [  # newest first
        Run("cnn-3", "", model="custom_cnn", group="", state="training"),
        Run("cnn-2", "", model="custom_cnn", group="g1", state="finished"),
        Run("r50-2", "", model="resnet50_scratch", group="", state="finished"),
        Run("cnn-1", "", model="custom_cnn", group="g0", state="finished"),
        Run("r50-1", "", model="resnet50_scratch", group="g0", state="finished"),
    ]
    assert default_runs(runs) == {"custom_cnn": "cnn-2", "resnet50_scratch": "r50-2"}
    assert default_runs(runs, "g0") == {"custom_cnn": "cnn-1", "resnet50_scratch": "r50-1"}
    assert default_runs(runs[:1]) == {"custom_cnn": "cnn-3"}


def test_the_worker_alone_runs_with_one_torch_thread(model: LoadedModel, frames: list) -> None:
    import torch

    def threads_in_a_new_thread() -> int:
        seen: list[int] = []
        helper = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        helper.start()
        helper.join()
        return seen[0]

    before = threads_in_a_new_thread()
    inside: list[int] = []
    spy = copy.copy(model)
    spy.probabilities = lambda crops, **kw: (
        inside.append(torch.get_num_threads()),
        model.probabilities(crops, **kw),
    )[1]
    with LiveRecognizer([spy], LiveConfig(threads=1)) as recognizer:
        recognizer.submit(frames[0])
        recognizer.results.get(timeout=10)
    assert inside == [1]
    assert threads_in_a_new_thread() == before  # pages that run later keep torch's default


class CountingDetector:
    """The live YuNet detector, counting its calls."""

    name = "counting"

    def __init__(self) -> None:
        from facecore.live.detection import live_detector

        self.inner = live_detector("auto")
        self.calls = 0

    def detect(self, image_rgb: np.ndarray) -> list:
        self.calls += 1
        return self.inner.detect(image_rgb)


@pytest.mark.parametrize("redetect_s", [0.0, 30.0])
def test_found_faces_are_reused_for_redetect_s(model: LoadedModel, frames: list, redetect_s: float) -> None:
    """Within ``redetect_s`` the worker classifies the faces it found again on the newest frame,
    without running the detector; with 0 it detects on every frame."""
    detector = CountingDetector()
    config = LiveConfig(detector=detector, threshold=0.0, redetect_s=redetect_s)
    with LiveRecognizer([model], config) as recognizer:
        results = []
        for bgr in frames[:6]:
            recognizer.submit(bgr)
            results.append(recognizer.results.get(timeout=10))
    assert all(r.faces for r in results)
    assert [r.detected for r in results] == ([True] * 6 if redetect_s == 0 else [True] + [False] * 5)
    assert detector.calls == (6 if redetect_s == 0 else 1)
    assert recognizer.stats().recognised == 6
