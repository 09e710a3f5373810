"""The Dataset page in Streamlit's AppTest: it renders, and its buttons do what they say."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facecore.data.dataset import list_datasets, load_dataset
from tests.helpers import APP, LFW


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/dataset.py").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    kinds = ("success", "info", "warning", "error", "caption", "markdown")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def section(at: AppTest, name: str) -> AppTest:
    at.segmented_control(key="dataset-section").set_value(name).run()
    assert not at.exception, at.exception
    return at


def jpegs(files: list[Path]) -> list[tuple[str, bytes, str]]:
    return [(f.name, f.read_bytes(), "image/jpeg") for f in files]


def zip_of(tree: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(tree.rglob("*.jpg")):
            zf.write(f, f"photos/{f.relative_to(tree).as_posix()}")
    return buf.getvalue()


def test_empty_workspace_offers_the_ways_in(home: Path) -> None:
    at = open_page()
    assert "Add yourself with the camera or upload a zip, or try the LFW sample" in texts(at)
    assert {"zip-import", "lfw-build"} <= {b.key for b in at.button}
    assert at.button(key="zip-import").disabled  # nothing uploaded yet
    for how in ("images", "camera", "zip"):
        at.segmented_control(key="add-how").set_value(how).run()
        assert not at.exception, (how, at.exception)
    at.segmented_control(key="add-how").set_value("camera").run()
    at.toggle(key="enroll-live").set_value(False).run()
    assert not at.exception and len(at.camera_input) == 1


def test_uploading_a_zip_imports_it_and_shows_the_report(yunet_home: Path, people_tree: Path) -> None:
    at = open_page()
    at.text_input(key="add-name").set_value("friends").run()
    at.file_uploader(key="zip-upload").set_value(("people.zip", zip_of(people_tree), "application/zip")).run()
    at.button(key="zip-import").click().run()
    assert not at.exception, at.exception
    assert list_datasets() == ["friends"]
    ds = load_dataset("friends")
    assert ds.classes == ["Colin_Powell", "Hugo_Chavez", "Tony_Blair", "Unknown"] and len(ds.stored) == 32
    assert "32 faces stored, 0 without a face, 0 duplicates, 0 problems" in texts(at)
    report = at.dataframe[0].value
    assert list(report["person"]) == ds.classes and list(report["stored"]) == [8, 8, 8, 8]
    assert at.selectbox(key="dataset-select").value == "friends"
    # Importing the same zip again, appended, stores nothing new: every file is a duplicate.
    at.segmented_control(key="dataset-section").set_value("add").run()
    assert at.radio(key="add-mode").value == "append"
    at.file_uploader(key="zip-upload").set_value(("people.zip", zip_of(people_tree), "application/zip")).run()
    at.button(key="zip-import").click().run()
    assert not at.exception
    assert "0 faces stored, 0 without a face, 32 duplicates" in texts(at)
    assert len(load_dataset("friends").stored) == 32


def test_a_bad_upload_says_what_is_wrong_and_keeps_the_dataset(small_dataset: str) -> None:
    before = (load_dataset(small_dataset).path / "manifest.csv").read_bytes()
    at = open_page()
    section(at, "add")
    at.radio(key="add-mode").set_value("replace").run()
    at.file_uploader(key="zip-upload").set_value(("bad.zip", b"this is not a zip", "application/zip")).run()
    at.button(key="zip-import").click().run()
    assert not at.exception
    assert any("not a folder and not a zip archive" in e.value for e in at.error)
    assert (load_dataset(small_dataset).path / "manifest.csv").read_bytes() == before


def test_uploading_photos_of_one_person_appends_them(small_dataset: str) -> None:
    at = open_page()
    section(at, "add")
    at.segmented_control(key="add-how").set_value("images").run()
    files = sorted((LFW / "Ariel_Sharon").glob("*.jpg"))[:4]
    at.text_input(key="images-person").set_value("Ariel Sharon").run()
    at.file_uploader(key="images-upload").set_value(jpegs(files)).run()
    at.button(key="images-import").click().run()
    assert not at.exception, at.exception
    ds = load_dataset(small_dataset)
    assert ds.counts()["Ariel Sharon"] == {"train": 2, "val": 1, "test": 1, "unsplit": 0}
    assert len(ds.stored) == 36
    # More photos of a person already there: pick them from the list.
    at.radio(key="images-existing").set_value(True).run()
    at.selectbox(key="images-person-pick").set_value("Ariel Sharon").run()
    more = sorted((LFW / "Ariel_Sharon").glob("*.jpg"))[4:6]
    at.file_uploader(key="images-upload").set_value(jpegs(more)).run()
    at.button(key="images-import").click().run()
    assert not at.exception, at.exception
    counts = load_dataset(small_dataset).counts()["Ariel Sharon"]
    assert counts == {"train": 4, "val": 1, "test": 1, "unsplit": 0}


def test_every_section_renders_on_a_real_dataset(small_dataset: str) -> None:
    at = open_page()
    assert [m.value for m in at.metric][:3] == ["4", "32", "0"]
    table = at.dataframe[0].value
    assert list(table["person"]) == ["Colin_Powell", "Hugo_Chavez", "Tony_Blair", "Unknown"]
    assert list(table["train"]) == [6, 6, 6, 6] and list(table["test"]) == [1, 1, 1, 1]
    section(at, "faces")
    assert len(at.image) >= 1 and len([b for b in at.button if b.key.startswith("del-")]) == 8
    section(at, "noface")
    assert "Every image in this dataset has a face" in texts(at)
    section(at, "augment")
    assert not at.exception
    at.checkbox(key="aug-rotation").uncheck().run()
    at.button(key="aug-reroll").click().run()
    at.button(key="aug-another").click().run()
    assert not at.exception
    for key in ("aug-crop", "aug-noise", "aug-flip", "aug-jitter", "aug-translate"):
        at.checkbox(key=key).uncheck()
    at.run()
    assert "Every augmentation is off" in texts(at)


def test_rename_and_delete_a_person_from_the_page(small_dataset: str) -> None:
    at = open_page()
    section(at, "faces")
    at.selectbox(key="faces-person").set_value("Tony_Blair").run()
    at.text_input(key="rename-to").set_value("Tony").run()
    at.button(key="rename").click().run()
    assert not at.exception, at.exception
    assert "Renamed 'Tony_Blair' to 'Tony' (8 images)" in texts(at)
    assert load_dataset(small_dataset).classes == ["Colin_Powell", "Hugo_Chavez", "Tony", "Unknown"]
    assert at.selectbox(key="faces-person").value == "Tony"
    # A clashing name is refused with the reason, and nothing changes.
    at.text_input(key="rename-to").set_value("colin_powell").run()
    at.button(key="rename").click().run()
    assert any("already has a person 'Colin_Powell'" in e.value for e in at.error)
    # Delete needs the confirmation box first.
    assert at.button(key="delete-person").disabled
    at.checkbox(key="delete-person-sure").check().run()
    at.button(key="delete-person").click().run()
    assert not at.exception
    assert "Deleted 'Tony' (8 images)" in texts(at)
    assert load_dataset(small_dataset).classes == ["Colin_Powell", "Hugo_Chavez", "Unknown"]


def test_delete_an_image_from_the_grid(small_dataset: str) -> None:
    at = open_page()
    section(at, "faces")
    button = next(b for b in at.button if b.key.startswith("del-"))
    file = button.key.removeprefix("del-")
    button.click().run()
    assert not at.exception
    assert f"Deleted {file}" in texts(at)
    assert file not in {r.file for r in load_dataset(small_dataset).rows}
    assert len(load_dataset(small_dataset).stored) == 31


def test_resolve_a_noface_image_from_the_page(noface_dataset: str) -> None:
    at = open_page()
    assert [m.value for m in at.metric][:3] == ["4", "32", "1"]
    section(at, "noface")
    keep = next(b for b in at.button if b.key.startswith("nf-centre_crop-"))
    keep.click().run()
    assert not at.exception, at.exception
    assert "Kept Colin_Powell/sky_" in texts(at) and "(train)" in texts(at)
    ds = load_dataset(noface_dataset)
    assert not [r for r in ds.rows if r.status == "no_face"] and len(ds.stored) == 33
    assert "Every image in this dataset has a face" in texts(at)


def test_the_lfw_sample_button_builds_a_dataset(
    assets: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACECORE_LFW_SOURCE", str(LFW))
    at = open_page()
    at.number_input(key="lfw-people").set_value(2)
    at.number_input(key="lfw-per-person").set_value(5)
    at.number_input(key="lfw-unknown").set_value(3)
    at.run()
    at.button(key="lfw-build").click().run()
    assert not at.exception, at.exception
    ds = load_dataset("lfw-sample")
    assert ds.classes == ["Colin_Powell", "George_W_Bush", "Unknown"]  # the two with the most photos
    assert len(ds.stored) == 13
    assert at.selectbox(key="dataset-select").value == "lfw-sample"


def test_camera_snapshots_enroll_a_person(yunet_home: Path) -> None:
    at = open_page()
    at.segmented_control(key="add-how").set_value("camera").run()
    at.toggle(key="enroll-live").set_value(False).run()
    at.text_input(key="add-name").set_value("me").run()
    at.text_input(key="enroll-person").set_value("Gerhard").run()
    at.number_input(key="enroll-target").set_value(3).run()
    photos = sorted((LFW / "Gerhard_Schroeder").glob("*.jpg"))
    seen = []
    for i in (0, 0, 1, 2):  # the second photo repeats the first: skipped as a duplicate
        at.camera_input(key="enroll-snapshot").set_value((f"{i}.jpg", photos[i].read_bytes(), "image/jpeg"))
        at.run()
        assert not at.exception, at.exception
        seen.append(" ".join(m.value for m in [*at.success, *at.warning] if m.value.startswith("This photo")))
    assert seen[0] == seen[2] == seen[3] == "This photo: accepted."
    assert seen[1].startswith("This photo: too like a face already taken (difference 0.0")
    assert at.button(key="enroll-save").label == "Save 3 faces as Gerhard"
    at.button(key="enroll-save").click().run()
    assert not at.exception, at.exception
    assert "Added 3 faces of 'Gerhard' to 'me'" in texts(at)
    ds = load_dataset("me")
    assert ds.counts()["Gerhard"] == {"train": 1, "val": 1, "test": 1, "unsplit": 0}


def test_the_camera_refuses_an_invalid_name_and_keeps_the_crops(yunet_home: Path) -> None:
    at = open_page()
    at.segmented_control(key="add-how").set_value("camera").run()
    at.toggle(key="enroll-live").set_value(False).run()
    at.text_input(key="enroll-person").set_value("a/b").run()
    photo = sorted((LFW / "Gerhard_Schroeder").glob("*.jpg"))[0]
    at.camera_input(key="enroll-snapshot").set_value(("0.jpg", photo.read_bytes(), "image/jpeg")).run()
    at.button(key="enroll-save").click().run()
    assert any("try 'a_b'" in e.value for e in at.error)
    assert list_datasets() == []
    assert at.button(key="enroll-save").label == "Save 1 face as a/b"


def test_dismiss_the_report_and_delete_the_dataset(small_dataset: str) -> None:
    at = open_page()
    at.session_state["dataset-report"] = {
        "dataset": "small", "mode": "create", "detector": "yunet", "seconds": 1.0,
        "classes": {"A": {"stored": 3}}, "split": {}, "problems": [], "no_face": [],
        "duplicates": [], "warnings": [],
    }  # fmt: skip
    at.run()
    assert "Import into **small**" in texts(at)
    at.button(key="report-dismiss").click().run()
    assert "Import into" not in texts(at)
    assert at.button(key="drop-dataset").disabled
    at.checkbox(key="drop-small").check().run()
    at.button(key="drop-dataset").click().run()
    assert not at.exception, at.exception
    assert list_datasets() == []
    assert "Deleted dataset 'small'." in texts(at) and "No dataset yet" in texts(at)


def test_ice_servers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pages.common import ice_servers

    monkeypatch.delenv("FACECORE_ICE_SERVERS", raising=False)
    assert ice_servers() == []
    stun = [{"urls": ["stun:stun.example.org:3478"]}]
    monkeypatch.setenv("FACECORE_ICE_SERVERS", json.dumps(stun))
    assert ice_servers() == stun
    monkeypatch.setenv("FACECORE_ICE_SERVERS", json.dumps({"iceServers": stun}))
    assert ice_servers() == stun
    for bad in ("not json", '[{"urls": "http://x"}]', '"stun:x"'):
        monkeypatch.setenv("FACECORE_ICE_SERVERS", bad)
        assert ice_servers() == []


def test_a_gallery_enrollment_says_so_through_unrelated_reruns(
    small_dataset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outcome of Enroll stays on the page while other reruns come (the camera's capture
    starting again after a save reruns the page), and goes once it is old."""
    from pages.widgets import gallery_panel

    at = section(open_page(), "gallery")
    at.button(key="gallery-enroll-dataset").click().run()
    assert not at.exception, at.exception
    said = [m.value for m in at.success if "into gallery" in m.value]
    assert said, texts(at)
    at.run()  # a rerun the user did not cause
    assert [m.value for m in at.success if "into gallery" in m.value] == said
    monkeypatch.setattr(gallery_panel, "FLASH_SECONDS", 0.0)
    at.run()
    assert not [m.value for m in at.success if "into gallery" in m.value]
