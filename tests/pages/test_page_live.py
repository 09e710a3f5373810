"""The Live page in Streamlit's AppTest (no browser): empty workspace, a trained run, a snapshot."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from facecore.data.images import encode_jpeg, load_rgb
from facecore.live.config import LiveConfig
from facecore.live.recognizer import LiveRecognizer
from facecore.live.video import face_video_frames
from facecore.recognize.models import clear_cache
from tests.helpers import APP, PERSON


def live_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/live.py")
    return at.run()


def texts(at: AppTest, *kinds: str) -> str:
    return " ".join(str(e.value) for kind in kinds for e in getattr(at, kind))


@pytest.fixture(scope="module")
def workspace(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A copy of the session's trained workspace: YuNet, dataset ``faces``, the run ``tiny-cnn``."""
    home = tmp_path_factory.mktemp("live-page") / "home"
    shutil.copytree(trained_template, home)
    clear_cache()
    yield SimpleNamespace(home=home, run="tiny-cnn", src=trained_template.parent / "src")
    clear_cache()


@pytest.fixture
def trained(workspace: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setenv("FACECORE_HOME", str(workspace.home))
    monkeypatch.delenv("FACECORE_YUNET", raising=False)
    monkeypatch.delenv("FACECORE_ICE_SERVERS", raising=False)
    return workspace


def test_live_page_on_an_empty_workspace_says_to_train_first(home: Path) -> None:
    at = live_page()
    assert not at.exception
    assert [t.value for t in at.title] == ["Live"]
    message = texts(at, "info")
    assert "Nobody to recognise yet" in message and "Train page" in message and "gallery" in message
    assert "python -m facecore train --dataset NAME --model custom_cnn" in message


def test_live_page_with_a_trained_run(trained: SimpleNamespace) -> None:
    at = live_page()
    assert not at.exception
    run = at.selectbox(key="live-run")
    assert run.value == trained.run and run.options == [f"{trained.run}  (custom_cnn, dataset faces)"]
    summary = json.loads((trained.home / "models" / trained.run / "summary.json").read_text())
    calibrated = summary["threshold"]["threshold"]
    assert f"Calibrated on the validation split: {trained.run} {calibrated:.2f}" in texts(at, "caption")
    assert at.slider(key="live-threshold").value == pytest.approx(round(calibrated, 2))
    assert at.radio(key="live-camera").options == ["Live video", "Snapshot"]
    # AppTest has no WebRTC server session: the page says so instead of failing
    assert "Live video is not available in this session" in texts(at, "info")
    # precision: auto by default, timed on this machine and said; float32 when chosen
    assert at.radio(key="live-precision").value == "auto"
    note = re.search(
        r"Classifying in custom_cnn: (\w+) \(float32 (\d+) ms, int8 (\d+) ms per face\)", texts(at, "caption")
    )
    assert note, texts(at, "caption")
    assert note[1] == ("int8" if int(note[3]) < int(note[2]) else "float32") or note[2] == note[3]
    at.radio(key="live-precision").set_value("float32").run()
    assert not at.exception and "Classifying in custom_cnn: float32." in texts(at, "caption")

    at.radio(key="live-models").set_value("All three models").run()
    assert not at.exception
    captions = texts(at, "caption")
    assert "No `resnet50_pretrained` run yet" in captions and "No `resnet50_scratch` run yet" in captions
    assert at.selectbox(key="live-custom_cnn-newest run of each model").value == trained.run


def test_ice_servers_from_secrets_toml_or_the_environment(
    trained: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["ice"] = {
        "servers": [{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]
    }
    at.switch_page("pages/live.py").run()
    assert not at.exception
    assert "ICE: 1 ICE server(s) from .streamlit/secrets.toml [ice]." in texts(at, "caption")
    two = [{"urls": "stun:a.example.org"}, {"urls": ["stun:b.example.org", "stun:c.example.org"]}]
    monkeypatch.setenv("FACECORE_ICE_SERVERS", json.dumps(two))
    at.run()
    assert "ICE: 2 ICE server(s) from FACECORE_ICE_SERVERS." in texts(at, "caption")
    monkeypatch.setenv("FACECORE_ICE_SERVERS", '[{"urls": "turn:t.example.org"}]')
    at.run()
    assert "needs 'username' and 'credential'" in texts(at, "warning")
    assert "ICE: no STUN/TURN servers (the configured ones are invalid)." in texts(at, "caption")


def test_snapshot_names_the_same_person_as_the_library(trained: SimpleNamespace) -> None:
    photo = load_rgb(sorted((trained.src / PERSON).glob("*.jpg"))[0])
    frame = next(face_video_frames([photo], frames_per_image=1))
    jpeg = encode_jpeg(frame)
    expected = LiveRecognizer([trained.home / "models" / trained.run], LiveConfig(threshold=0.0)).recognize(
        load_rgb(jpeg)
    )
    at = live_page()
    at.slider(key="live-threshold").set_value(0.0)
    at.radio(key="live-camera").set_value("Snapshot").run()
    assert not at.exception and at.camera_input
    at.camera_input[0].set_value(("shot.jpg", jpeg, "image/jpeg")).run()
    assert not at.exception
    (table,) = at.table
    names = list(table.value["name"])
    assert names == [f.predictions[0].label for f in expected.faces] and names
    assert list(table.value["model"]) == ["custom_cnn"] * len(names)
    assert [i.captions for i in at.image] == [["Recognised faces"]]
