"""In Chromium: "Add me" on the Live page puts the person in front of the camera into the gallery,
and the running video names them a few seconds later, without restarting the stream.

The gallery ``team`` holds Colin Powell and Tony Blair (5 real LFW photos each, the shipped
sface embedder, no training). The fake camera plays 8 LFW photos of Hugo Chavez, who is not in
it (a 640x480 ``.y4m``, looped by Chromium): the page first calls him Unknown; then a name is
typed, Add me is clicked, and the test measures how long until the page names him.
In presentation mode the control is refused and says how to allow it; with the presenter's
``FACECORE_ALLOW_ENROLL=1`` it works.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from facecore.gallery.store import load_gallery
from facecore.mode import ALLOW_ENROLL_ENV
from tests.helpers import (
    ARTIFACTS,
    LFW,
    TABLES,
    enroll_team,
    face_y4m,
    fake_camera_args,
    key_class,
    press_start,
    seen_names,
    settle,
    shot,
    webrtc_player,
)

pytestmark = pytest.mark.browser

NEWCOMER = "Hugo_Chavez"
#: what the test measured on the 2-core development machine is in the module's report; this is
#: the most it accepts from the click to the name on the page
NAMED_WITHIN_S = 20.0


@pytest.fixture
def newcomer_video(tmp_path: Path) -> Path:
    photos = tmp_path / NEWCOMER
    photos.mkdir()
    for p in sorted((LFW / NEWCOMER).glob("*.jpg"))[:8]:
        shutil.copy(p, photos / p.name)
    return face_y4m(tmp_path / "newcomer.y4m", photos, fps=15, frames_per_image=8)


@pytest.fixture
def browser_args(newcomer_video: Path) -> list[str]:
    return fake_camera_args(newcomer_video)


@pytest.fixture
def team(yunet_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("FACECORE_MODE", raising=False)
    monkeypatch.delenv(ALLOW_ENROLL_ENV, raising=False)
    return enroll_team("team")


@pytest.fixture
def server_mode(request, team: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's environment (set before ``app_url`` starts it): full, demo, or demo allowing Add me."""
    mode = request.param
    if mode.startswith("demo"):
        monkeypatch.setenv("FACECORE_MODE", "demo")
    if mode == "demo-allowed":
        monkeypatch.setenv(ALLOW_ENROLL_ENV, "1")
    return mode


def now_names(page) -> list[str]:
    """The names in the Live page's table of the faces in view now."""
    for rows in page.evaluate(TABLES):
        if rows and rows[0][:3] == ["face", "model", "name"]:
            return [cells[2] for cells in rows[1:]]
    return []


def seen_times(page) -> int:
    """How often the "Recognised so far" table says the newcomer was named."""
    for rows in page.evaluate(TABLES):
        if rows and rows[0][:3] == ["name", "model", "times"]:
            return sum(int(cells[2]) for cells in rows[1:] if cells[0] == NEWCOMER)
    return 0


def open_live(page, app_url: str) -> None:
    page.goto(app_url)
    page.get_by_test_id("stSidebarNav").get_by_text("Live", exact=True).click()
    page.get_by_role("heading", name="Live", exact=True).wait_for(timeout=60_000)
    page.get_by_text("Unknown below this similarity").wait_for(timeout=120_000)
    page.locator(f".{key_class('live-addme-box')}").wait_for(timeout=60_000)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("server_mode", ["full", "demo-allowed"], indirect=True)
def test_add_me_then_the_live_video_names_the_newcomer(server_mode: str, app_url: str, page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1200})
    open_live(page, app_url)
    name = page.get_by_label("Your name")
    name.fill(NEWCOMER)
    name.press("Enter")
    settle(page)
    player = webrtc_player(page, "live-webrtc")
    press_start(player)
    started = time.monotonic()
    while time.monotonic() - started < 120 and "Unknown" not in now_names(page):
        page.wait_for_timeout(300)
    assert now_names(page) == ["Unknown"], f"tables: {page.evaluate(TABLES)}"
    page.wait_for_timeout(2000)  # a few more results: still a stranger
    assert NEWCOMER not in seen_names(page) and set(now_names(page)) <= {"Unknown"}
    shot(page, f"addme-{server_mode}-unknown.png")

    button = page.get_by_role("button", name="Add me", exact=True)
    button.click()
    clicked = time.monotonic()
    progress_at = added_at = named_at = None
    presses = 1
    while time.monotonic() - clicked < 60 and (named_at is None or added_at is None):
        text = page.locator(f".{key_class('live-addme-box')}").inner_text()
        now = time.monotonic() - clicked
        if progress_at is None and re.search(rf"Adding {NEWCOMER}: [0-5]/5", text):
            progress_at = now
            page.locator(f".{key_class('live-addme-box')}").screenshot(
                path=str(ARTIFACTS / f"addme-{server_mode}-progress.png")
            )
        if added_at is None and f"Added {NEWCOMER}" in text:
            added_at = now
        if named_at is None and (NEWCOMER in now_names(page) or NEWCOMER in seen_names(page)):
            named_at = now
        if progress_at is None and now > 8 * presses:  # the click was lost in a rerun: press again
            button.click()
            presses += 1
        page.wait_for_timeout(100)
    shot(page, f"addme-{server_mode}-named.png")
    player.locator("video").first.screenshot(path=str(ARTIFACTS / f"addme-{server_mode}-video.png"))
    report = (
        f"progress shown {progress_at} s, added {added_at} s, named {named_at} s after the click "
        f"({presses} press(es))"
    )
    print(f"\n[{server_mode}] {report}")
    (ARTIFACTS / f"addme-{server_mode}-timing.txt").write_text(report + "\n")
    assert added_at is not None, f"never added; {report}; box: {text}"
    assert f"Added {NEWCOMER} (5 faces) to gallery team" in text, text
    assert named_at is not None and named_at <= NAMED_WITHIN_S, report
    assert load_gallery("team").counts()[NEWCOMER] == 5
    before = seen_times(page)
    page.wait_for_timeout(5000)  # the stream goes on (a loop of the video) and keeps naming him
    assert seen_times(page) > before, f"tables: {page.evaluate(TABLES)}"
    assert seen_names(page)[0] == NEWCOMER
    player.get_by_role("button", name="STOP").click()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("server_mode", ["demo"], indirect=True)
def test_add_me_is_refused_in_presentation_mode_and_says_how_to_allow_it(
    server_mode: str, app_url: str, page
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    open_live(page, app_url)
    box = page.locator(f".{key_class('live-addme-box')}")
    assert page.get_by_role("button", name="Add me", exact=True).is_disabled()
    assert page.get_by_label("Your name").is_disabled()
    text = box.inner_text()
    assert "presentation mode" in text and f"{ALLOW_ENROLL_ENV}=1" in text and "secrets.toml" in text, text
    shot(page, "addme-demo-refused.png")
    assert load_gallery("team").people == ["Colin_Powell", "Tony_Blair"]
