"""The Compare page in Chromium: two real tiny runs, their table and heatmaps, and a 7-face photo."""

from __future__ import annotations

import pytest

from tests.helpers import ARTIFACTS, PHOTO, train_two_runs

pytestmark = pytest.mark.browser

IDLE = (
    "() => document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state')"
    " === 'notRunning' && !document.querySelector('[data-testid=\"stSkeleton\"]')"
)


def settle(page) -> None:
    """Wait until the script has finished and every element has been drawn."""
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE, timeout=120_000)


def screenshot(page, name: str) -> None:
    """The whole page: the window is made as tall as Streamlit's main area, then restored."""
    main = "document.querySelector('[data-testid=\"stMainBlockContainer\"]')"
    height = page.evaluate(f"() => {main}.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": min(height + 150, 6000)})
    settle(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"compare-{name}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})


def test_compare_two_runs_and_a_photo_in_chromium(small_dataset: str, app_url: str, page) -> None:
    runs = train_two_runs(small_dataset)
    page.goto(app_url)
    page.get_by_role("link", name="Compare").click()
    table = page.get_by_role("table")
    table.wait_for(timeout=120_000)  # the first visit evaluates both runs
    settle(page)
    for text in (*runs, "macro F1", "F1 Tony_Blair", "false-accept rate at threshold", "total parameters"):
        assert table.get_by_text(text, exact=True).count() >= 1, text
    screenshot(page, "metrics")

    page.get_by_role("tab", name="Confusion").click()
    settle(page)
    assert page.locator("[data-testid='stPlotlyChart'] g.heatmaplayer").count() == 2
    cell = page.locator("[data-testid='stPlotlyChart'] g.scatterlayer path.point").first
    box = cell.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # click a heatmap cell
    page.get_by_text("predicted as").wait_for(timeout=60_000)
    settle(page)
    assert page.locator("[data-testid='stImage']").count() >= 1
    screenshot(page, "confusion")

    page.get_by_role("tab", name="Try a photo").click()
    settle(page)
    page.locator("input[type=file]").set_input_files(str(PHOTO))
    page.get_by_text("7 faces found by the yunet detector").wait_for(timeout=120_000)
    settle(page)
    assert page.get_by_text("face 7", exact=True).is_visible()
    assert page.locator("[data-testid='stProgress']").count() == 14  # 7 faces x 2 models
    assert page.get_by_text("closest training images").count() == 14
    screenshot(page, "photo")
