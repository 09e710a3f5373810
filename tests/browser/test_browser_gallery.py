"""In Chromium: enroll a person into a gallery on the Dataset page, then see their name on Live.

No model is trained: 5 LFW photos of Colin Powell are uploaded under "Enroll into a gallery",
and the Live page, recognising with the gallery, names him in a fake camera that plays his
photos (a 640x480 ``.y4m``, looped by Chromium).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from facecore.gallery.dlib_embedder import dlib_problem
from facecore.gallery.store import load_gallery
from tests.helpers import (
    ARTIFACTS,
    PERSON,
    TABLES,
    fake_camera_args,
    press_start,
    seen_names,
    settle,
    shot,
    wait_for,
    webrtc_player,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(dlib_problem() is not None, reason=f"dlib embedder: {dlib_problem()}"),
]


@pytest.fixture
def browser_args(camera_video: Path) -> list[str]:
    """Chromium's fake camera plays conftest's ``camera_video`` (Colin Powell's photos)."""
    return fake_camera_args(camera_video)


@pytest.mark.timeout(400)
def test_enroll_on_the_dataset_page_then_live_names_the_person(
    small_dataset: str, people_tree: Path, app_url: str, page
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1400})
    try:
        page.goto(app_url)
        page.get_by_test_id("stSidebarNav").get_by_text("Dataset", exact=True).click()
        page.get_by_role("heading", name="Dataset", exact=True).wait_for(timeout=60_000)
        section = page.get_by_role("radio", name="Enroll into a gallery")
        section.wait_for(timeout=120_000)
        section.click()
        enroll_and_watch(page, people_tree)
    finally:
        shot(page, "gallery-last.png")


def enroll_and_watch(page, people_tree: Path) -> None:
    name = page.get_by_label("New gallery name")
    name.fill("team")
    name.press("Enter")
    page.get_by_text("Photos of one person", exact=True).click()
    person = page.get_by_label("Person", exact=True)
    person.fill(PERSON)
    person.press("Enter")
    photos = sorted((people_tree / PERSON).glob("*.jpg"))[:5]
    page.locator("input[type=file]").first.set_input_files([str(p) for p in photos])
    button = page.get_by_role("button", name="Enroll these photos")

    def ready() -> bool:  # a rerun (the radio, the upload) may redraw the field before it kept the name
        if person.input_value() != PERSON:
            person.fill(PERSON)
            person.press("Enter")
        return button.is_enabled()

    wait_for(ready, timeout=120, poll=1.0, what="the uploaded photos and the person's name")
    page.wait_for_timeout(1000)  # the uploads' rerun settles
    button.click()
    page.get_by_text("into gallery 'team'").wait_for(timeout=120_000)
    page.get_by_text("team: 1 people").wait_for(timeout=60_000)
    shot(page, "gallery-enrolled.png")
    enrolled = load_gallery("team")
    assert enrolled.people == [PERSON] and 1 <= len(enrolled.files) <= 5

    page.get_by_test_id("stSidebarNav").get_by_text("Live", exact=True).click()
    page.get_by_role("heading", name="Live", exact=True).wait_for(timeout=60_000)
    page.get_by_role("radio", name="A gallery (enrolled people)").wait_for(timeout=60_000)
    assert page.get_by_role("radio", name="A gallery (enrolled people)").is_checked()
    page.get_by_text("Unknown below this similarity").wait_for(timeout=60_000)
    player = webrtc_player(page, "live-webrtc")  # the live video's player, never a stale copy
    player.get_by_role("button", name="START").wait_for(timeout=120_000)
    settle(page)
    press_start(player)
    started = time.monotonic()
    names: list[str] = []
    while time.monotonic() - started < 150 and PERSON not in names:
        names = seen_names(page)
        page.wait_for_timeout(500)
    assert PERSON in names, f"{PERSON} never recognised; tables: {page.evaluate(TABLES)}"
    page.wait_for_timeout(4000)
    shot(page, "gallery-live.png")
    assert seen_names(page)[0] == PERSON
    player.get_by_role("button", name="STOP").click()
    settle(page)  # STOP reruns the page: a navigation clicked during that run can be dropped

    # the webcam way in: the Dataset page's capture (its quality checks), saved into the gallery
    page.get_by_test_id("stSidebarNav").get_by_text("Dataset", exact=True).click()
    page.get_by_role("heading", name="Dataset", exact=True).wait_for(timeout=60_000)
    page.get_by_role("radio", name="Enroll into a gallery").click()
    page.get_by_text("Webcam", exact=True).click()
    name = page.get_by_label("Your name")
    name.fill("Colin_from_camera")
    name.press("Enter")
    target = page.get_by_label("Faces to capture")
    target.fill("3")
    target.press("Enter")
    page.get_by_text("0 of 3 faces").wait_for(timeout=60_000)
    press_start(webrtc_player(page, "enroll-webrtc"))
    page.get_by_role("button", name="Save 3 faces as Colin_from_camera").click(timeout=120_000)
    page.get_by_text("Colin_from_camera +3").wait_for(timeout=120_000)
    shot(page, "gallery-webcam.png")
    assert load_gallery("team").counts()["Colin_from_camera"] == 3
