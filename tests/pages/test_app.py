"""The dashboard's pages, rendered with Streamlit's AppTest (no browser)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.helpers import APP


def test_home_on_an_empty_workspace(home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    text = " ".join(m.value for m in at.info) + " ".join(m.value for m in at.warning)
    assert "No dataset yet" in text
    assert [b.label for b in at.button] == ["Build the LFW sample"]
    assert "python -m facecore weights download" in text and "resnet50-11ad3fa6.pth" in text


def test_home_lists_a_real_dataset(small_dataset: str, fake_imagenet_weights: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [s.value for s in at.subheader] == ["Datasets", "Trained models", "This machine"]
    line = "**small**: 3 people + Unknown, 32 images (train 24, val 4, test 4)"
    assert any(line in m.value for m in at.markdown)
    assert any("No trained model yet" in m.value for m in at.info)
    assert any("ImageNet weights" in s.value and "present" in s.value for s in at.success)


def test_home_builds_the_lfw_sample(yunet_home: Path, assets: Path, monkeypatch) -> None:
    """The guided start's second way in: the LFW sample (pointed at the offline copy)."""
    monkeypatch.setenv("FACECORE_LFW_SOURCE", str(assets / "lfw-deepfunneled"))
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.button[0].click().run()
    assert not at.exception
    assert any("**lfw-sample**: 7 people + Unknown" in m.value for m in at.markdown)
    assert any("Built 'lfw-sample':" in m.value and "Train page" in m.value for m in at.success)
    at.run()  # the message is shown once, not on every later visit
    assert not any("Built 'lfw-sample':" in m.value for m in at.success)
