"""The Live page offers a run's ONNX export ("RUN · onnx") and recognises with it (AppTest, no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facecore.data.images import encode_jpeg, load_rgb
from facecore.live.config import LiveConfig
from facecore.live.export import export_run
from facecore.live.recognizer import LiveRecognizer
from facecore.live.video import face_video_frames
from facecore.recognize.models import clear_cache
from tests.helpers import APP, LFW, PERSON


def texts(at: AppTest, *kinds: str) -> str:
    return " ".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def test_live_page_picks_the_onnx_export_and_names_faces_with_it(trained_home: Path) -> None:
    clear_cache()
    meta = export_run("tiny-cnn")
    onnx_path = meta["onnx_path"]
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/live.py").run()
    assert not at.exception
    run = at.selectbox(key="live-run")
    assert run.options == ["tiny-cnn  (custom_cnn, dataset faces)", "tiny-cnn · onnx"]
    run.set_value(onnx_path).run()
    assert not at.exception
    stored = json.loads(Path(meta["json_path"]).read_text())["threshold"]
    assert at.slider(key="live-threshold").value == pytest.approx(round(stored, 2))
    assert "Classifying in custom_cnn: onnx float32." in texts(at, "caption")

    photo = load_rgb(sorted((LFW / PERSON).glob("*.jpg"))[0])
    jpeg = encode_jpeg(next(face_video_frames([photo], frames_per_image=1)))
    with LiveRecognizer([onnx_path], LiveConfig(threshold=0.0)) as rec:
        expected = rec.recognize(load_rgb(jpeg)).faces[0].predictions[0]
    at.slider(key="live-threshold").set_value(0.0)
    at.radio(key="live-camera").set_value("Snapshot").run()
    at.camera_input[0].set_value(("shot.jpg", jpeg, "image/jpeg")).run()
    assert not at.exception
    rows = at.table[0].value
    assert rows.iloc[0]["model"] == "custom_cnn" and rows.iloc[0]["name"] == expected.label
