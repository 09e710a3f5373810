"""The app in a real browser: Debian's Chromium driven by Playwright against `streamlit run`."""

from __future__ import annotations

import pytest

from tests.helpers import ARTIFACTS

pytestmark = pytest.mark.browser


def test_app_starts_and_shows_the_home_page(app_url: str, page) -> None:
    page.goto(app_url)
    page.get_by_text("No dataset yet").wait_for(timeout=60_000)
    assert page.get_by_role("heading", name="facecore").is_visible()
    page.get_by_text("python -m facecore weights download").first.wait_for(timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home-empty.png"), full_page=True)


@pytest.mark.parametrize("path,title", [("dataset", "Dataset"), ("live", "Live")])
def test_a_deep_link_as_the_first_request_opens_the_app(app_url: str, page, path: str, title: str) -> None:
    """A fresh server whose first visitor opens /dataset gets the app, not the bare page file.

    Streamlit's legacy ``pages/`` mode would run pages/dataset.py alone: no navigation, no title.
    """
    page.goto(f"{app_url}/{path}")
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_text("Compare", exact=True).wait_for(timeout=30_000)
    assert nav.get_by_text("Home", exact=True).is_visible()
    assert page.url.rstrip("/").endswith(f"/{path}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(3000)
    page.screenshot(path=str(ARTIFACTS / f"deep-link-{path}.png"))
