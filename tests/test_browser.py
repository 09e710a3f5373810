"""The app in a real browser: Debian's Chromium driven by Playwright against `streamlit run`."""

from __future__ import annotations

import pytest

from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_app_starts_and_shows_the_home_page(app_url: str, page) -> None:
    page.goto(app_url)
    page.get_by_text("No dataset yet").wait_for(timeout=60_000)
    assert page.get_by_role("heading", name="facecore").is_visible()
    page.get_by_text("python -m facecore weights download").first.wait_for(timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home-empty.png"), full_page=True)
