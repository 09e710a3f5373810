"""The Live page in Chromium: a fake camera plays real LFW faces of Colin Powell over WebRTC.

The camera is a 640x480 ``.y4m`` built in the test's folder from the Colin Powell photos of
``small_dataset``; Chromium plays it in a loop (``--use-file-for-fake-video-capture``). A
custom_cnn is trained on that dataset first, the page streams the camera (SENDRECV, no ICE
servers on loopback), and the test waits for the person's real name in the page's table of
recognised names, then checks it is the name recognised most often.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import (
    ARTIFACTS,
    PERSON,
    TABLES,
    fake_camera_args,
    seen_names,
    settle,
    shot,
    train_tiny,
    webrtc_player,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_args(camera_video: Path) -> list[str]:
    """Chromium's fake camera plays conftest's ``camera_video`` (Colin Powell's photos)."""
    return fake_camera_args(camera_video)


@pytest.fixture
def live_run(small_dataset: str) -> str:
    return train_tiny(small_dataset)


@pytest.mark.timeout(300)
def test_live_page_names_the_person_in_the_camera(live_run: str, app_url: str, page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(app_url)
    page.get_by_test_id("stSidebarNav").get_by_text("Live", exact=True).click()
    page.get_by_role("heading", name="Live", exact=True).wait_for(timeout=60_000)
    page.get_by_text(live_run).first.wait_for(timeout=60_000)
    slider = page.get_by_test_id("stSlider").filter(has_text="Unknown below").get_by_role("slider")
    slider.focus()
    slider.press("Home")  # 0.00, then 0.10: names below 10% confidence read Unknown
    for _ in range(10):
        slider.press("ArrowRight")
    page.get_by_test_id("stSlider").filter(has_text="0.10").wait_for(timeout=30_000)
    player = webrtc_player(page, "live-webrtc")  # the live video's player, never a stale copy
    player.get_by_role("button", name="START").wait_for(timeout=60_000)
    settle(page)  # let the rerun from the slider end: a press during it can be lost
    shot(page, "live-ready.png")

    player.get_by_role("button", name="START").click()
    started = time.monotonic()
    names: list[str] = []
    while time.monotonic() - started < 120 and PERSON not in names:
        names = seen_names(page)
        page.wait_for_timeout(500)
    assert PERSON in names, f"{PERSON} never recognised; tables: {page.evaluate(TABLES)}"
    page.wait_for_timeout(6000)  # a couple of loops of the video
    names = seen_names(page)
    shot(page, "live-running.png")
    player.locator("video").first.screenshot(path=str(ARTIFACTS / "live-video.png"))
    assert names[0] == PERSON, f"most often recognised: {names}"
    stats = page.get_by_text("recognition", exact=False).filter(has_text="fps").first.inner_text()
    assert "video" in stats and "custom_cnn" in stats, stats
    player.get_by_role("button", name="STOP").click()
    page.get_by_text("Press START and allow the camera.").wait_for(timeout=30_000)
    assert seen_names(page)[0] == PERSON  # what was recognised stays after STOP
    page.get_by_text("Video not starting? What to check").click()
    page.get_by_text("Camera permission").wait_for(timeout=10_000)
    shot(page, "live-guidance.png")


def test_live_page_on_an_empty_workspace(app_url: str, page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(app_url)
    page.get_by_test_id("stSidebarNav").get_by_text("Live", exact=True).click()
    page.get_by_text("Nobody to recognise yet").wait_for(timeout=60_000)
    assert page.get_by_text("Train page").count() >= 1
    shot(page, "live-empty.png")
