"""A cold server opened in three tabs at once: every page draws.

Two sessions whose first pages import torchvision's submodules at the same moment used to meet
its circular imports half-done ("cannot import name 'InterpolationMode' from partially
initialized module 'torchvision.transforms'"): the page showed that ImportError instead of
itself: this test failed 1 of 8 times before ``streamlit_app.py`` imported torchvision first
(and a stress script, 1 of 4 cold starts), and 0 of 18 stress runs after.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.timeout(300)
def test_a_cold_server_opened_in_three_tabs_draws_every_page(app_url: str, page) -> None:
    browser = page.context.browser
    tabs = [page, browser.new_page(), browser.new_page()]
    for tab, path in zip(tabs, ["", "dataset", "live"], strict=True):
        tab.goto(f"{app_url}/{path}")
    for tab, heading in zip(tabs, ["facecore", "Dataset", "Live"], strict=True):
        tab.get_by_role("heading", name=heading, exact=True).wait_for(timeout=120_000)
        assert tab.get_by_text("ImportError").count() == 0
