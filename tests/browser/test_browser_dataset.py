"""The Dataset page in a real browser: Debian's Chromium, Playwright, `streamlit run`.

Chromium's fake camera plays a video made of real LFW faces, so webcam enrollment runs the
whole way: WebRTC on loopback, the frame callback, the quality checks, the queue, Save.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecore.data.dataset import list_datasets, load_dataset
from facecore.data.images import encode_jpeg, load_rgb
from tests.helpers import ARTIFACTS, LFW, fake_camera_args, press_start, webrtc_player

pytestmark = pytest.mark.browser


def write_face_video(path: Path, person: str = "Colin_Powell", photos: int = 6, fps: int = 10) -> Path:
    """A 640x480 Y4M video: each of ``photos`` real photos of ``person`` shown for one second."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(f"YUV4MPEG2 W640 H480 F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for f in sorted((LFW / person).glob("*.jpg"))[:photos]:
            frame = np.full((480, 640, 3), 120, np.uint8)
            face = cv2.resize(load_rgb(f), (400, 400), interpolation=cv2.INTER_CUBIC)
            frame[40:440, 120:520] = face
            yuv = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes()
            for _ in range(fps):
                fh.write(b"FRAME\n" + yuv)
    return path


@pytest.fixture
def browser_args(tmp_path: Path) -> list[str]:
    """Chromium's fake camera plays real faces (and permission prompts are accepted)."""
    video = write_face_video(tmp_path / "faces-camera.y4m")
    return fake_camera_args(video)


def open_dataset_page(page, app_url: str) -> None:
    """Open the app and go to the Dataset page through the sidebar, as a user does."""
    page.goto(app_url)
    page.get_by_role("link", name="Dataset").click()
    page.get_by_role("button", name="Build the LFW sample").wait_for(timeout=60_000)


def zip_file(tree: Path, dest: Path) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(tree.rglob("*.jpg")):
            zf.write(f, f.relative_to(tree).as_posix())
    dest.write_bytes(buf.getvalue())
    return dest


def test_upload_a_zip_see_the_report_and_the_faces(
    yunet_home: Path, people_tree: Path, tmp_path: Path, assets: Path, app_url: str, page
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    sky = load_rgb(assets / "detection" / "dogs.jpg")[:400]  # a real photo with no human face
    (people_tree / "Tony_Blair" / "sky.jpg").write_bytes(encode_jpeg(sky))
    page.set_viewport_size({"width": 1280, "height": 1400})
    open_dataset_page(page, app_url)
    assert page.get_by_text("No dataset yet. Add yourself with the camera").is_visible()
    page.screenshot(path=str(ARTIFACTS / "dataset-empty.png"), full_page=True)

    page.locator("input[type=file]").first.set_input_files(
        str(zip_file(people_tree, tmp_path / "friends.zip"))
    )
    page.get_by_text("friends.zip").wait_for(timeout=60_000)
    page.get_by_role("button", name="Import the zip").click()
    page.get_by_text("32 faces stored, 1 without a face").wait_for(timeout=120_000)
    assert list_datasets() == ["faces"] and len(load_dataset("faces").stored) == 32
    page.get_by_text("Class balance: images per person").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "dataset-report.png"), full_page=True)

    page.get_by_role("button", name="Dismiss").click()
    page.get_by_role("radio", name="Faces", exact=True).click()
    page.get_by_text("8 faces: train 6, val 1, test 1.").wait_for(timeout=60_000)
    images = page.locator("[data-testid=stImage] img")
    images.nth(7).wait_for(timeout=60_000)
    assert images.count() == 8
    assert all(images.nth(i).evaluate("img => img.naturalWidth") == 256 for i in range(8))
    page.screenshot(path=str(ARTIFACTS / "dataset-grid.png"), full_page=True)

    page.get_by_role("radio", name="No face found (1)").click()
    page.get_by_role("button", name="Keep as is").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "dataset-noface.png"), full_page=True)
    page.get_by_role("button", name="Centre crop").click()
    page.get_by_text("Every image in this dataset has a face.").wait_for(timeout=60_000)
    assert len(load_dataset("faces").stored) == 33

    page.get_by_role("radio", name="Augmentation").click()
    page.get_by_text("augmented 5").wait_for(timeout=60_000)
    page.locator("[data-testid=stImage] img").nth(5).wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "dataset-augment.png"), full_page=True)


def test_enroll_with_the_camera(yunet_home: Path, app_url: str, page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1500})
    open_dataset_page(page, app_url)
    assert page.get_by_text("No dataset yet. Add yourself with the camera").is_visible()
    page.get_by_role("radio", name="Camera").click()
    name = page.get_by_label("Your name")
    name.fill("Colin")
    name.press("Enter")
    target = page.get_by_label("Faces to capture")
    target.fill("3")
    target.press("Enter")
    page.get_by_text("0 of 3 faces").wait_for(timeout=60_000)
    webrtc = webrtc_player(page, "enroll-webrtc")  # never a stale copy of the player
    press_start(webrtc)
    save = page.get_by_role("button", name="Save 3 faces as Colin")
    try:
        save.wait_for(timeout=90_000)
    except Exception:  # keep what the user would have seen, for the next engineer
        page.screenshot(path=str(ARTIFACTS / "dataset-enroll-timeout.png"), full_page=True)
        (ARTIFACTS / "dataset-enroll-timeout.txt").write_text(page.inner_text("body"))
        raise
    page.get_by_text("3 of 3 faces").wait_for(timeout=10_000)
    page.get_by_role("button", name="Start over").wait_for(timeout=10_000)
    page.wait_for_timeout(1500)  # let the fragment's run finish drawing the thumbnails
    page.screenshot(path=str(ARTIFACTS / "dataset-enroll.png"), full_page=True)
    webrtc.get_by_role("button", name="STOP").click()
    save.click()
    page.get_by_text("Added 3 faces of 'Colin' to 'faces'").wait_for(timeout=60_000)
    ds = load_dataset("faces")
    assert ds.counts()["Colin"] == {"train": 1, "val": 1, "test": 1, "unsplit": 0}
    page.get_by_text("Class balance: images per person").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "dataset-enrolled.png"), full_page=True)
