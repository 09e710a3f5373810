"""A cold server opened in three tabs at once, one of them clicking to another page: every page draws.

With Streamlit's ``runner.fastReruns`` on, a click during a page's first run started a second
script thread beside the first, and the two imported torchvision at once: its circular imports
were met half-done ("cannot import name 'InterpolationMode' from partially initialized module
'torchvision.transforms'") and the page showed that ImportError. ``.streamlit/config.toml`` turns
fastReruns off. Before: this test failed 1 of 8 runs (a stress script, 1 of 4 cold starts; a
click on a cold server, 3 of 3 when the app imported torch first); after: 0 of 8 and 0 of 3.

Tabs of different sessions raced the same way: on a cold server Streamlit's legacy mode for a
``pages/`` folder runs ``/dataset`` without the app script, so one session imported
``torchvision.models`` (Home) while another imported ``torchvision.transforms`` (Dataset). This
test failed in 1 of 2 full CI runs and 1 of 4 runs alone after the modules were split (issue 18).
``pages/widgets/torch_first.py``, imported first by the app and every page, makes the second
session wait for whole packages: 0 of 12 cold starts of this scenario after; before, 1 of 5 (and
1 of 1 with the imports in the app script alone, which legacy mode skips), the server log
showing the same ImportError.
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
    page.get_by_role("link", name="Dataset").click()  # while the first run may still be importing
    for tab, heading in zip(tabs, ["Dataset", "Dataset", "Live"], strict=True):
        tab.get_by_role("heading", name=heading, exact=True).wait_for(timeout=120_000)
        assert tab.get_by_text("ImportError").count() == 0
