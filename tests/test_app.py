"""The dashboard's pages, rendered with Streamlit's AppTest (no browser)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def test_home_on_an_empty_workspace(home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    text = " ".join(m.value for m in at.info) + " ".join(m.value for m in at.warning)
    assert "No dataset yet" in text
    assert "python -m facecore weights download" in text and "resnet50-11ad3fa6.pth" in text


def test_home_lists_a_real_dataset(small_dataset: str, fake_imagenet_weights: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [s.value for s in at.subheader] == ["small"]
    assert any("4 people, 32 images (train 24, val 4, test 4)" in m.value for m in at.markdown)
    assert any("ImageNet weights" in s.value and "present" in s.value for s in at.success)
