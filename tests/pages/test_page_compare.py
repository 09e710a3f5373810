"""The Compare page in Streamlit's AppTest: empty workspace, two real tiny runs, a real photo upload."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from facecore.evaluate.figures import (
    confusion_select_figure,
    cost_figure,
    faces_image,
    openset_threshold_figure,
)
from tests.helpers import APP, PHOTO, train_two_runs


def compare_page(timeout: float = 180) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.switch_page("pages/compare.py")
    return at.run()


def open_tab(at: AppTest, name: str) -> AppTest:
    at.session_state["compare-tab"] = name
    return at.run()


@pytest.fixture
def two_runs(small_dataset: str) -> list[str]:
    return train_two_runs(small_dataset)


def test_empty_workspace_says_how_to_train(home: Path) -> None:
    at = compare_page()
    assert not at.exception
    assert "No trained runs yet" in at.info[0].value
    assert "python -m facecore train" in at.info[0].value
    assert [(link.value, link.proto.page) for link in at.page_link] == [("Go to Train", "train")]


def test_two_real_runs_on_every_tab_and_a_photo(two_runs: list[str], home: Path, monkeypatch) -> None:
    at = compare_page()
    assert not at.exception, at.exception
    assert not at.error
    assert at.selectbox(key="compare-group-small").value == "g1"
    for run in two_runs:  # evaluated once, on demand, and saved in the run folder
        assert (home / "models" / run / "eval_test" / "metrics.json").is_file()

    table = at.table[0].value
    assert list(table.columns) == two_runs
    for row in (
        "model",
        "accuracy",
        "macro F1",
        "F1 Colin_Powell",
        "F1 Unknown",
        "false-accept rate at threshold",
        "trainable parameters",
        "total parameters",
        "checkpoint size (MB)",
        "training time (minutes)",
        "ms per image (batch 1)",
    ):
        assert row in table.index, row
    assert table.loc["trainable parameters", "run-a"] == "224,516"
    assert len(at.get("plotly_chart")) == 2  # accuracy/F1 bars, size and speed

    def no_recompute(*args, **kwargs):
        raise AssertionError("the evaluation was computed again")

    monkeypatch.setattr("facecore.evaluate.evaluation.evaluate_run", no_recompute)
    at = open_tab(at, "Confusion")
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2  # one confusion matrix per run
    chooser = at.selectbox(key="compare-cell")
    assert chooser.value is None
    first = chooser.options[0]
    at = chooser.select_index(0).run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown if "predicted as" in m.value]
    assert shown and shown[0].startswith("**run-")
    assert len(at.image) >= 1, first

    at = open_tab(at, "Gallery")
    assert not at.exception, at.exception
    cards = [m.value for m in at.markdown if "✓" in m.value or "✗" in m.value]
    assert len(cards) == 4  # the 4 test images of the small dataset, one page
    assert all("run-a:" in c and "run-b:" in c for c in cards)
    at = at.radio(key="compare-filter").set_value("Any model wrong").run()
    assert not at.exception, at.exception

    at = open_tab(at, "Open set")
    assert not at.exception, at.exception
    at = at.slider(key="compare-threshold").set_value(0.5).run()
    assert not at.exception, at.exception
    assert "threshold 0.50" in at.get("plotly_chart")[0].proto.spec

    check_photo_upload(open_tab(at, "Try a photo"), home)


def check_photo_upload(at: AppTest, home: Path) -> None:
    """A real 7-face photo: every face found and recognised by both runs, and nothing written to disk;
    a text file and a 48-megapixel image get clear messages."""
    before = {p for p in home.rglob("*") if p.is_file()}
    at.file_uploader(key="compare-photo").set_value((PHOTO.name, PHOTO.read_bytes(), "image/jpeg"))
    at.run()
    assert not at.exception, at.exception
    assert not at.error
    assert "7 faces found by the yunet detector in 2007_007763.jpg" in at.image[0].captions[0]
    bars = at.progress
    assert len(bars) == 7 * 2  # every face, every model
    assert sum("closest training images" in c.value for c in at.caption) == 7 * 2
    new = {p for p in home.rglob("*") if p.is_file()} - before
    assert {p.name for p in new} <= {"embeddings_train.pt"}, new  # the photo itself is never written

    at.file_uploader(key="compare-photo").set_value(("notes.jpg", b"this is text, not a photo", "image/jpeg"))
    at.run()
    assert not at.exception
    assert "notes.jpg: not an image file" in at.error[0].value

    huge = io.BytesIO()
    Image.new("RGB", (8000, 6000)).save(huge, format="PNG")
    at.file_uploader(key="compare-photo").set_value(("huge.png", huge.getvalue(), "image/png"))
    at.run()
    assert not at.exception
    message = at.error[0].value.replace(",", "")  # Pillow's guard or facecore's own check words it
    assert "huge.png" in message and "limit of 40000000 pixels" in message


def test_compare_figures() -> None:
    cm = [[3, 1, 0], [0, 2, 0], [1, 0, 4]]
    fig = confusion_select_figure(cm, ["A", "B", "C"], "run")
    cells = fig.data[1]
    assert len(cells.x) == 5 and ("B", "A", 1) in zip(cells.x, cells.y, cells.customdata, strict=True)
    rows = [
        {
            "label": "x",
            "params_trainable": 10,
            "params_total": 20,
            "checkpoint_mb": 1.0,
            "train_minutes": None,
            "ms_per_image_b1": 2.0,
        }
    ]
    assert len(cost_figure(rows).data) == 5
    sweep = [
        {"threshold": t / 10, "known_accuracy": 1 - t / 10, "false_accept_rate": 1 - t / 10}
        for t in range(11)
    ]
    fig = openset_threshold_figure({"x": sweep}, 0.3, {"x": 0.5})
    assert fig.data[-1].x == (0.7,) and "0.30" in fig.layout.title.text
    image = np.zeros((100, 120, 3), np.uint8)
    drawn = faces_image(image, [(10, 40, 30, 30)], ["1"])
    assert drawn.shape == image.shape and drawn[40, 10:40].any() and not image.any()
