"""Dataset edits on real imported faces: what changes, and that nothing else does."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from facecore import workspace
from facecore.data.dataset import import_dataset, load_dataset
from facecore.data.edit import (
    add_crops,
    check_class_name,
    delete_class,
    delete_image,
    letterbox,
    person_listing,
    rename_class,
    resolve_noface,
)
from facecore.data.images import load_rgb
from facecore.data.manifest import NOFACE_DIR
from facecore.detect.crop import crop_face
from facecore.detect.yunet import YuNetDetector
from facecore.errors import DatasetError
from tests.helpers import LFW, YUNET
from tests.helpers import snapshot as folder_hashes


def snapshot(name: str) -> dict[str, tuple]:
    """Every stored row of a dataset: file -> (class, split, sha256 of the source, sha256 of the file)."""
    ds = load_dataset(name)
    out = {}
    for r in ds.rows:
        if r.file:
            data = (ds.path / r.file).read_bytes()
            out[r.file] = (r.class_name, r.split, r.sha256, r.status, hashlib.sha256(data).hexdigest())
    return out


def test_check_class_name() -> None:
    assert check_class_name("  Ada Lovelace ") == "Ada Lovelace"
    assert check_class_name("unknown") == "Unknown"
    assert check_class_name("Zoë") == "Zoë"
    with pytest.raises(DatasetError, match="try 'a_b'"):
        check_class_name("a/b")
    with pytest.raises(DatasetError, match="empty"):
        check_class_name("   ")
    with pytest.raises(DatasetError, match="reserved"):
        check_class_name(NOFACE_DIR)
    with pytest.raises(DatasetError, match="no usable characters"):
        check_class_name("???")


def test_rename_class_moves_files_and_keeps_every_split(small_dataset: str) -> None:
    before = snapshot(small_dataset)
    result = rename_class(small_dataset, "Tony_Blair", "Tony B")
    assert "Renamed 'Tony_Blair' to 'Tony B' (8 images)" in result.message
    after = snapshot(small_dataset)
    ds = load_dataset(small_dataset)
    assert ds.classes == ["Colin_Powell", "Hugo_Chavez", "Tony B", "Unknown"]
    assert not (ds.path / "Tony_Blair").exists()
    assert len(list((ds.path / "Tony B").iterdir())) == 8
    for file, (cls, split, sha, status, content) in before.items():
        if cls == "Tony_Blair":
            moved = "Tony B/" + file.split("/", 1)[1]
            assert after[moved] == ("Tony B", split, sha, status, content)
        else:
            assert after[file] == (cls, split, sha, status, content)
    assert len(after) == len(before)
    assert ds.counts()["Tony B"] == {"train": 6, "val": 1, "test": 1, "unsplit": 0}


def test_rename_errors_leave_the_dataset_untouched(small_dataset: str) -> None:
    before = folder_hashes(workspace.dataset_path(small_dataset))
    with pytest.raises(DatasetError, match="no person 'Nobody'.*Colin_Powell"):
        rename_class(small_dataset, "Nobody", "X")
    with pytest.raises(DatasetError, match="already has a person 'Colin_Powell'"):
        rename_class(small_dataset, "Tony_Blair", "colin_powell")
    with pytest.raises(DatasetError, match="already has a person 'Unknown'"):
        rename_class(small_dataset, "Tony_Blair", "UNKNOWN")
    with pytest.raises(DatasetError, match="try 'Tony_Blair_'"):
        rename_class(small_dataset, "Tony_Blair", "Tony_Blair?")
    with pytest.raises(DatasetError, match="already called"):
        rename_class(small_dataset, "Tony_Blair", "Tony_Blair")
    with pytest.raises(DatasetError, match="No dataset named 'nope'"):
        rename_class("nope", "a", "b")
    assert folder_hashes(workspace.dataset_path(small_dataset)) == before
    leftovers = [
        p.name for p in workspace.datasets_dir().iterdir() if p.name.startswith((".staging", ".old"))
    ]
    assert leftovers == []


def test_delete_class_keeps_the_others_and_warns_at_the_last(small_dataset: str) -> None:
    before = snapshot(small_dataset)
    result = delete_class(small_dataset, "Hugo_Chavez")
    assert result.message == "Deleted 'Hugo_Chavez' (8 images) from 'small'."
    assert result.warnings == []
    after = snapshot(small_dataset)
    assert after == {f: v for f, v in before.items() if v[0] != "Hugo_Chavez"}
    ds = load_dataset(small_dataset)
    assert ds.classes == ["Colin_Powell", "Tony_Blair", "Unknown"]
    assert not (ds.path / "Hugo_Chavez").exists()
    assert all(r.class_name != "Hugo_Chavez" for r in ds.rows)

    delete_class(small_dataset, "Unknown")
    result = delete_class(small_dataset, "Tony_Blair")
    assert any("has one person" in w for w in result.warnings)
    result = delete_class(small_dataset, "Colin_Powell")
    assert any("no images left" in w for w in result.warnings)
    ds = load_dataset(small_dataset)
    assert ds.classes == [] and ds.stored == []
    assert sorted(p.name for p in ds.path.iterdir()) == ["dataset.json", "manifest.csv", "report.json"]


def test_delete_image_removes_one_file_and_row(small_dataset: str) -> None:
    before = snapshot(small_dataset)
    ds = load_dataset(small_dataset)
    test_row = next(r for r in ds.stored if r.class_name == "Colin_Powell" and r.split == "test")
    result = delete_image(small_dataset, test_row.file)
    assert test_row.file in result.message
    assert any("'Colin_Powell' has no test images" in w for w in result.warnings)
    after = snapshot(small_dataset)
    assert after == {f: v for f, v in before.items() if f != test_row.file}
    assert not (ds.path / test_row.file).exists()
    # A unique file name is enough; an unknown one is refused.
    train_row = next(r for r in ds.stored if r.class_name == "Tony_Blair" and r.split == "train")
    assert delete_image(small_dataset, Path(train_row.file).name).warnings == []
    with pytest.raises(DatasetError, match="no image 'missing.jpg'"):
        delete_image(small_dataset, "missing.jpg")


@pytest.mark.parametrize("action", ["keep", "centre_crop"])
def test_resolve_noface_keeps_the_image_with_a_split(noface_dataset: str, action: str) -> None:
    ds = load_dataset(noface_dataset)
    (row,) = [r for r in ds.rows if r.status == "no_face"]
    assert row.file.startswith(f"{NOFACE_DIR}/Colin_Powell/") and row.split == ""
    before = snapshot(noface_dataset)
    result = resolve_noface(noface_dataset, row.file, action)
    ds = load_dataset(noface_dataset)
    kept = next(r for r in ds.rows if r.sha256 == row.sha256)
    assert kept.file == f"Colin_Powell/{Path(row.file).name}"
    assert kept.status == ("ok" if action == "keep" else "centre_crop")
    # The class already has held-out images, so the single new image joins train.
    assert kept.split == "train" and "(train)" in result.message
    image = load_rgb(ds.path / kept.file)
    assert image.shape == (256, 256, 3)
    if action == "keep":  # the 900x400 sky, whole: black bars above and below
        assert image[:50].mean() < 10 and image[100:150].mean() > 60
    assert not (ds.path / NOFACE_DIR).exists()
    after = snapshot(noface_dataset)
    del before[row.file], after[kept.file]
    assert after == before
    assert ds.counts()["Colin_Powell"]["train"] == 7


def test_resolve_noface_delete_and_errors(noface_dataset: str) -> None:
    ds = load_dataset(noface_dataset)
    (row,) = [r for r in ds.rows if r.status == "no_face"]
    ok_row = ds.stored[0]
    with pytest.raises(DatasetError, match="not an image where no face was found"):
        resolve_noface(noface_dataset, ok_row.file, "keep")
    with pytest.raises(DatasetError, match="Unknown action 'rotate'"):
        resolve_noface(noface_dataset, row.file, "rotate")  # type: ignore[arg-type]
    before = snapshot(noface_dataset)
    resolve_noface(noface_dataset, row.file, "delete")
    after = snapshot(noface_dataset)
    assert after == {f: v for f, v in before.items() if f != row.file}
    assert all(r.status != "no_face" for r in load_dataset(noface_dataset).rows)


def real_crops(person: str, n: int) -> list[np.ndarray]:
    det = YuNetDetector(YUNET)
    crops = []
    for f in sorted((LFW / person).glob("*.jpg"))[:n]:
        image = load_rgb(f)
        crops.append(crop_face(image, det.detect(image)[0]))
    return crops


def test_add_crops_creates_a_dataset_then_appends(home: Path, assets: Path) -> None:
    crops = real_crops("Gerhard_Schroeder", 5)
    result = add_crops("me", "Gerhard", crops, detector="yunet")
    assert "Added 5 faces of 'Gerhard' to 'me'" in result.message
    assert any("has one person" in w for w in result.warnings)
    ds = load_dataset("me")
    assert ds.classes == ["Gerhard"] and ds.counts()["Gerhard"] == {
        "train": 3,
        "val": 1,
        "test": 1,
        "unsplit": 0,
    }
    assert all(load_rgb(ds.path / r.file).shape == (256, 256, 3) for r in ds.stored)
    before = snapshot("me")
    # Byte-identical crops are skipped, new ones added; nothing already there changes split.
    more = real_crops("Gerhard_Schroeder", 7)
    result = add_crops("me", "Gerhard", more)
    assert "Added 2 faces" in result.message and "5 already there" in result.message
    after = snapshot("me")
    assert {f: v for f, v in after.items() if f in before} == before
    assert len(after) == 7
    with pytest.raises(DatasetError, match="already in 'me'"):
        add_crops("me", "Gerhard", crops[:2])
    with pytest.raises(DatasetError, match="no face crops"):
        add_crops("me", "Gerhard", [])
    with pytest.raises(DatasetError, match="not an RGB uint8"):
        add_crops("me", "Gerhard", [np.zeros((10, 10), np.uint8)])
    with pytest.raises(DatasetError, match="try 'a_b'"):
        add_crops("me", "a/b", crops)
    assert snapshot("me") == after


def test_add_crops_to_an_existing_dataset_keeps_its_splits(small_dataset: str) -> None:
    before = snapshot(small_dataset)
    add_crops(small_dataset, "Ariel Sharon", real_crops("Ariel_Sharon", 4), detector="yunet")
    after = snapshot(small_dataset)
    assert {f: v for f, v in after.items() if f in before} == before
    ds = load_dataset(small_dataset)
    assert "Ariel Sharon" in ds.classes
    assert ds.counts()["Ariel Sharon"] == {"train": 2, "val": 1, "test": 1, "unsplit": 0}
    ds.check_trainable()


def test_person_listing_imports_uploaded_images_into_one_person(small_dataset: str) -> None:
    before = snapshot(small_dataset)
    files = sorted((LFW / "Donald_Rumsfeld").glob("*.jpg"))[:4]
    listing = person_listing("Donald", [(f.name, f.read_bytes()) for f in files] + [("notes.txt", b"hello")])
    assert [p.message for p in listing.problems] == [
        "not an image extension; accepted: .bmp, .jpeg, .jpg, .pgm, .png, .webp. Skipped."
    ]
    report = import_dataset(listing, small_dataset, mode="append")
    assert report.classes["Donald"]["stored"] == 4
    after = snapshot(small_dataset)
    assert {f: v for f, v in after.items() if f in before} == before
    assert load_dataset(small_dataset).counts()["Donald"]["test"] == 1


def test_a_failed_edit_changes_nothing(small_dataset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = folder_hashes(workspace.dataset_path(small_dataset))
    meta = json.loads((workspace.dataset_path(small_dataset) / "dataset.json").read_text())

    def boom(staged: Path, final: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(workspace, "swap_in", boom)
    with pytest.raises(OSError, match="disk full"):
        rename_class(small_dataset, "Tony_Blair", "Tony")
    with pytest.raises(OSError, match="disk full"):
        add_crops(small_dataset, "Ariel", real_crops("Ariel_Sharon", 3))
    assert folder_hashes(workspace.dataset_path(small_dataset)) == before
    assert json.loads((workspace.dataset_path(small_dataset) / "dataset.json").read_text()) == meta
    assert not [p for p in workspace.datasets_dir().iterdir() if p.name.startswith(".staging")]


def test_letterbox_keeps_the_whole_image() -> None:
    wide = np.full((100, 300, 3), 200, np.uint8)
    out = letterbox(wide, 256)
    assert out.shape == (256, 256, 3)
    assert out[0, 128].tolist() == [0, 0, 0] and out[128, 128].tolist() == [200, 200, 200]
