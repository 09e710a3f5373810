"""The Live page's "Add me" control in Streamlit's AppTest: shown for a gallery, refused in
presentation mode with the way to allow it, allowed by the presenter's setting (environment or
``.streamlit/secrets.toml``). The capture itself is tested in tests/live/test_addme.py and in
the browser (tests/browser/test_browser_addme.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facecore.gallery.enroll import enroll_photos
from facecore.mode import ALLOW_ENROLL_ENV
from tests.helpers import APP, LFW


@pytest.fixture
def gallery(yunet_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("FACECORE_MODE", raising=False)
    monkeypatch.delenv(ALLOW_ENROLL_ENV, raising=False)
    photos = sorted((LFW / "Colin_Powell").glob("*.jpg"))[:3]
    enroll_photos("team", "Colin_Powell", [(p.name, p) for p in photos])
    return "team"


def live_page(secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (secrets or {}).items():
        at.secrets[key] = value
    at.switch_page("pages/live.py")
    return at.run()


def add_button(at: AppTest):
    return next(b for b in at.button if b.label == "Add me")


def warnings(at: AppTest) -> str:
    return " ".join(str(w.value) for w in at.warning)


def test_add_me_is_offered_for_a_gallery(gallery: str) -> None:
    at = live_page()
    assert not at.exception
    assert not add_button(at).disabled
    assert at.text_input(key="live-addme-name").label == "Your name"
    assert "--gallery team --enroll NAME" in " ".join(str(c.value) for c in at.caption)
    add_button(at).click().run()  # no name typed: said, nothing started
    assert "Type the name to add first." in " ".join(str(e.value) for e in at.error)


def test_presentation_mode_refuses_add_me_and_says_how_to_allow_it(
    gallery: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACECORE_MODE", "demo")
    at = live_page()
    assert not at.exception
    assert add_button(at).disabled and at.text_input(key="live-addme-name").disabled
    text = warnings(at)
    assert "presentation mode" in text and f"{ALLOW_ENROLL_ENV}=1" in text and "secrets.toml" in text

    monkeypatch.setenv(ALLOW_ENROLL_ENV, "1")
    at = live_page()
    assert not add_button(at).disabled and ALLOW_ENROLL_ENV not in warnings(at)


def test_the_presenter_allows_add_me_in_secrets_toml(gallery: str) -> None:
    try:
        at = live_page({"FACECORE_MODE": "demo", ALLOW_ENROLL_ENV: True})
        assert not at.exception
        assert not add_button(at).disabled
        assert os.environ[ALLOW_ENROLL_ENV] == "True"
    finally:
        os.environ.pop("FACECORE_MODE", None)
        os.environ.pop(ALLOW_ENROLL_ENV, None)
