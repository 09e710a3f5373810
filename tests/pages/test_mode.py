"""Presentation mode (FACECORE_MODE=demo): the library refuses every change to saved data, and the
pages show a banner and no import, training, edit or delete controls; predictions still work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from facecore.errors import ReadOnlyModeError
from facecore.mode import current_mode, mode_problem, read_only, require_writable
from tests.helpers import APP, ASSETS, PHOTO, snapshot

#: Words on the buttons and uploaders that change saved data.
WRITE_WORDS = ("import", "build", "train", "delete", "rename", "add", "stop", "cancel", "keep", "centre")


@pytest.mark.parametrize(
    "value,mode,problem",
    [("", "full", False), ("full", "full", False), (" Demo ", "demo", False), ("readonly", "demo", True)],
)
def test_mode_from_the_environment(value: str, mode: str, problem: bool, monkeypatch) -> None:
    monkeypatch.setenv("FACECORE_MODE", value)
    assert current_mode() == mode and read_only() == (mode == "demo")
    assert (mode_problem() is not None) == problem
    if mode == "demo":
        with pytest.raises(ReadOnlyModeError, match="Training is turned off: .*presentation mode"):
            require_writable("Training")
    else:
        require_writable("Training")


def test_every_library_call_that_writes_is_refused(trained_home: Path, tmp_path: Path, monkeypatch) -> None:
    from facecore.data.augment import augment_dataset
    from facecore.data.dataset import delete_dataset, import_dataset, load_dataset
    from facecore.data.edit import add_crops, delete_class, delete_image, rename_class, resolve_noface
    from facecore.data.images import load_rgb
    from facecore.data.sample import build_sample
    from facecore.detect.yunet import download_yunet
    from facecore.evaluate.compare import compare_runs
    from facecore.evaluate.evaluation import evaluate_run
    from facecore.live.inference import Predictor
    from facecore.models.weights import download_weights
    from facecore.train.addrun import add_run
    from facecore.train.config import TrainConfig
    from facecore.train.jobs import delete_job, start_job, stop_job
    from facecore.train.loop import train
    from facecore.train.runs import delete_run

    before = snapshot(trained_home)
    monkeypatch.setenv("FACECORE_MODE", "demo")
    a_file = load_dataset("faces").stored[0].file
    best = trained_home / "models" / "tiny-cnn" / "best.pt"
    calls = {
        "import": lambda: import_dataset(ASSETS / "lfw-deepfunneled" / "Colin_Powell", "new"),
        "delete dataset": lambda: delete_dataset("faces"),
        "sample": lambda: build_sample("s", source=ASSETS / "lfw-deepfunneled"),
        "augment": lambda: augment_dataset("faces", copies=1, out="faces-aug"),
        "rename": lambda: rename_class("faces", "Tony_Blair", "Tony"),
        "delete class": lambda: delete_class("faces", "Tony_Blair"),
        "delete image": lambda: delete_image("faces", a_file),
        "no face": lambda: resolve_noface("faces", a_file, "delete"),
        "enroll": lambda: add_crops("faces", "Me", [np.zeros((64, 64, 3), np.uint8)]),
        "train": lambda: train(TrainConfig.for_model("custom_cnn", "faces", epochs=1)),
        "start job": lambda: start_job([TrainConfig.for_model("custom_cnn", "faces", epochs=1)]),
        "stop job": lambda: stop_job("j1"),
        "delete job": lambda: delete_job("j1"),
        "delete run": lambda: delete_run("tiny-cnn"),
        "add run": lambda: add_run(best),
        "evaluate": lambda: evaluate_run("tiny-cnn", latency=False),
        "compare": lambda: compare_runs(["tiny-cnn"], out=tmp_path / "report", latency=False),
        "weights": lambda: download_weights(),
        "yunet": lambda: download_yunet(tmp_path),
    }
    for what, call in calls.items():
        with pytest.raises(ReadOnlyModeError, match="turned off: this server runs in presentation mode"):
            call()
        assert snapshot(trained_home) == before, what
    faces = Predictor([trained_home / "models" / "tiny-cnn"]).predict(load_rgb(PHOTO))
    assert len(faces) == 7  # predicting is what a demo is for
    assert snapshot(trained_home) == before


def test_the_command_line_says_so(trained_home: Path, monkeypatch, capsys) -> None:
    from facecore.cli.main import main

    monkeypatch.setenv("FACECORE_MODE", "demo")
    assert main(["dataset", "delete", "faces", "--yes"]) == 2
    assert "Deleting a dataset is turned off" in capsys.readouterr().err
    assert (trained_home / "datasets" / "faces" / "manifest.csv").is_file()


def page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page(f"pages/{name}.py")
    return at.run()


def controls(at: AppTest) -> list[str]:
    """The labels of every button, uploader and camera on the page."""
    labels = [b.label for b in at.button] + [u.label for u in at.get("file_uploader")]
    return labels + [c.label for c in at.get("camera_input")]


def writes(at: AppTest) -> list[str]:
    return [label for label in controls(at) if any(w in label.lower() for w in WRITE_WORDS)]


def banner(at: AppTest) -> bool:
    return any("Presentation mode" in i.value for i in at.info)


def test_pages_in_presentation_mode(trained_home: Path, monkeypatch) -> None:
    from facecore.evaluate.evaluation import evaluate_run

    monkeypatch.setenv("FACECORE_MODE", "demo")
    at = page("compare")  # an unevaluated run is not evaluated in demo mode (that would save files)
    assert "tiny-cnn has not been evaluated, and presentation mode saves nothing" in at.warning[0].value
    monkeypatch.delenv("FACECORE_MODE")
    evaluate_run("tiny-cnn")  # preparing the demo, in full mode (with latency, as the page shows it)
    monkeypatch.setenv("FACECORE_MODE", "demo")
    before = snapshot(trained_home / "datasets")
    for name in ("home", "dataset", "train", "compare", "live"):
        at = page(name)
        assert not at.exception, (name, at.exception)
        assert banner(at), name
        assert writes(at) == [], (name, writes(at))
    at = page("dataset")
    sections = at.get("button_group")[0].proto.options
    assert [o.content for o in sections] == ["Overview", "Faces", "Augmentation"]
    at.session_state["dataset-section"] = "faces"
    at.run()
    assert not at.exception and at.image and writes(at) == []
    at = page("train")
    assert not any("New training" in h.value for h in at.header)
    at = page("compare")
    at.session_state["compare-tab"] = "Try a photo"
    at.run()
    assert [u.label for u in at.get("file_uploader")] == [
        "A photo with faces (kept in memory only, never saved)"
    ]
    tmp_before = set(os.listdir(tempfile.gettempdir()))
    at.file_uploader(key="compare-photo").set_value((PHOTO.name, PHOTO.read_bytes(), "image/jpeg"))
    at.run()
    assert not at.exception and not at.error
    assert "7 faces found" in at.image[0].captions[0]
    assert set(os.listdir(tempfile.gettempdir())) <= tmp_before  # the photo is never written
    assert snapshot(trained_home / "datasets") == before


def test_the_same_pages_in_full_mode_have_their_controls(trained_home: Path) -> None:
    """The check above can fail: in full mode the same pages do show the write controls."""
    at = page("dataset")
    assert not banner(at)
    at.session_state["dataset-section"] = "faces"
    at.run()
    assert any("delete" in w.lower() for w in writes(at))
    assert any(w.startswith("Train") for w in writes(page("train")))


def test_an_empty_demo_server_offers_nothing_to_change(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("FACECORE_MODE", "demo")
    for name in ("home", "dataset"):
        at = page(name)
        assert not at.exception and banner(at) and writes(at) == [], (name, writes(at))
    assert list(home.iterdir()) == []


def test_the_mode_from_streamlit_secrets(home: Path, monkeypatch) -> None:
    monkeypatch.delenv("FACECORE_MODE", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["FACECORE_MODE"] = "demo"
    try:
        at.run()
        assert banner(at) and writes(at) == []
    finally:
        os.environ.pop("FACECORE_MODE", None)
