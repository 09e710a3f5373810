"""Dataset import, splits, duplicates, no-face handling, sample building and offline augmentation."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecore.data.dataset import import_dataset, load_dataset
from facecore.data.sample import fetch_lfw, select_people
from facecore.errors import DatasetExistsError, DownloadError, SplitError
from tests.helpers import LFW, make_people_tree, snapshot


def split_by_sha(name: str) -> dict[str, str]:
    return {r.sha256: r.split for r in load_dataset(name).stored}


def test_import_folder_reports_counts_crops_and_split(yunet_home: Path, people_tree: Path) -> None:
    report = import_dataset(people_tree, "faces")
    assert report.detector == "yunet"
    assert sorted(report.classes) == ["Colin_Powell", "Hugo_Chavez", "Tony_Blair", "Unknown"]
    for cls, counts in report.classes.items():
        assert counts["stored"] == 8, (cls, counts)
        assert counts.get("faces_found", 0) == 8
    assert report.split["Colin_Powell"] == {"train": 6, "val": 1, "test": 1, "unsplit": 0}
    text = str(report)
    assert "faces found: 32, not found: 0" in text and "Colin_Powell" in text

    ds = load_dataset("faces")
    assert ds.classes == ["Colin_Powell", "Hugo_Chavez", "Tony_Blair", "Unknown"]
    row = ds.stored[0]
    assert row.detector == "yunet" and len(row.box.split()) == 4 and float(row.score) > 0.5
    assert len(row.sha256) == 64 and row.source.endswith(".jpg") and row.status == "ok"
    with Image.open(ds.path / row.file) as im:
        assert im.size == (256, 256) and im.mode == "RGB"
    ds.check_trainable()
    assert {len(ds.items(s)) for s in ("val", "test")} == {4}
    assert len(ds.items("train")) == 24
    assert json.loads((ds.path / "report.json").read_text())["dataset"] == "faces"


def test_same_seed_same_split_and_no_sha_in_two_splits(yunet_home: Path, people_tree: Path) -> None:
    import_dataset(people_tree, "a", seed=0)
    import_dataset(people_tree, "b", seed=0)
    import_dataset(people_tree, "c", seed=1)
    a, b, c = split_by_sha("a"), split_by_sha("b"), split_by_sha("c")
    assert a == b
    assert a != c
    rows = load_dataset("a").stored
    assert len({r.sha256 for r in rows}) == len(rows)


def test_duplicates_stored_once_and_reported(yunet_home: Path, people_tree: Path) -> None:
    dup = people_tree / "Tony_Blair" / "copy_of_powell.jpg"
    shutil.copy(next((people_tree / "Colin_Powell").glob("*.jpg")), dup)
    report = import_dataset(people_tree, "faces")
    assert len(report.duplicates) == 1
    assert report.duplicates[0]["path"].endswith("copy_of_powell.jpg")
    ds = load_dataset("faces")
    shas = [r.sha256 for r in ds.stored]
    assert len(shas) == len(set(shas)) == 32
    assert [r.status for r in ds.rows].count("duplicate") == 1


def write_wall(path: Path) -> None:
    """A photo-sized image with no face in it: a smooth colour gradient with mild noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    img = np.stack([x / 640 * 200, y / 480 * 180, np.full_like(x, 90.0)], axis=-1)
    img += rng.normal(0, 4, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)


def test_no_face_is_reported_or_centre_cropped(yunet_home: Path, people_tree: Path) -> None:
    write_wall(people_tree / "Hugo_Chavez" / "dogs.jpg")
    report = import_dataset(people_tree, "faces")
    assert report.no_face == ["Hugo_Chavez/dogs.jpg"]
    assert report.classes["Hugo_Chavez"]["no_face"] == 1
    assert "no face: Hugo_Chavez/dogs.jpg" in str(report)
    ds = load_dataset("faces")
    (row,) = [r for r in ds.rows if r.status == "no_face"]
    assert row.split == "" and (ds.path / row.file).is_file() and row.file.startswith("_noface/")
    assert all("dogs" not in str(p) for p, _ in ds.items("train"))

    report = import_dataset(people_tree, "faces2", no_face="centre_crop")
    assert report.no_face == [] and report.classes["Hugo_Chavez"]["centre_crop"] == 1
    assert [r.status for r in load_dataset("faces2").stored].count("centre_crop") == 1


def test_existing_dataset_untouched_unless_append_or_replace(
    yunet_home: Path, people_tree: Path, tmp_path: Path
) -> None:
    import_dataset(people_tree, "faces")
    before = snapshot(yunet_home / "datasets" / "faces")
    with pytest.raises(DatasetExistsError, match="already exists"):
        import_dataset(people_tree, "faces")
    assert snapshot(yunet_home / "datasets" / "faces") == before

    extra = make_people_tree(tmp_path / "extra", {"Ariel_Sharon": 6})
    old_split = split_by_sha("faces")
    report = import_dataset(extra, "faces", mode="append")
    assert report.mode == "append"
    new_split = split_by_sha("faces")
    assert {k: new_split[k] for k in old_split} == old_split
    assert load_dataset("faces").classes == [
        "Ariel_Sharon",
        "Colin_Powell",
        "Hugo_Chavez",
        "Tony_Blair",
        "Unknown",
    ]
    assert len(new_split) == 38

    import_dataset(extra, "faces", mode="replace")
    assert load_dataset("faces").classes == ["Ariel_Sharon"]
    assert not list((yunet_home / "datasets").glob(".old-*")) and not list(
        (yunet_home / "datasets").glob(".staging-*")
    )


def test_zip_import_matches_folder_import(yunet_home: Path, people_tree: Path, tmp_path: Path) -> None:
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(people_tree.rglob("*.jpg")):
            zf.write(f, "my-faces/" + f.relative_to(people_tree).as_posix())  # one wrapping folder
        zf.writestr("__MACOSX/my-faces/Colin_Powell/._x.jpg", b"resource fork")
        zf.writestr("my-faces/Colin_Powell/.DS_Store", b"\0\0")
    import_dataset(people_tree, "from-folder")
    report = import_dataset(archive, "from-zip")
    assert report.problems == []
    assert split_by_sha("from-zip") == split_by_sha("from-folder")


def test_unknown_folder_any_case_is_the_unknown_class(yunet_home: Path, people_tree: Path) -> None:
    (people_tree / "Unknown").rename(people_tree / "UNKNOWN")
    import_dataset(people_tree, "faces")
    ds = load_dataset("faces")
    assert "Unknown" in ds.classes and ds.meta["unknown_class"] == "Unknown"


def test_small_class_gets_a_clear_split_message(yunet_home: Path, tmp_path: Path) -> None:
    src = make_people_tree(tmp_path / "src", {"Colin_Powell": 6, "Tony_Blair": 2})
    report = import_dataset(src, "faces")
    msg = next(w for w in report.warnings if "Tony_Blair" in w)
    assert "2 images" in msg and "at least 3" in msg
    ds = load_dataset("faces")
    assert ds.counts()["Tony_Blair"]["unsplit"] == 2
    with pytest.raises(SplitError, match="Tony_Blair"):
        ds.check_trainable()


def test_single_class_is_imported_with_a_warning(yunet_home: Path, tmp_path: Path) -> None:
    src = make_people_tree(tmp_path / "src", {"Colin_Powell": 5})
    (src / "Empty_Person").mkdir()
    report = import_dataset(src, "me")
    assert any("Only one class ('Colin_Powell')" in w for w in report.warnings)
    assert any("'Empty_Person' holds no usable images" in w for w in report.warnings)
    with pytest.raises(SplitError, match="at least two"):
        load_dataset("me").check_trainable()


def test_sample_from_lfw_people_tree(assets: Path) -> None:
    listing = select_people(LFW, people=7, min_images=70, unknown=20, seed=0)
    classes = sorted({i.class_name for i in listing.items})
    assert classes == [
        "Ariel_Sharon",
        "Colin_Powell",
        "Donald_Rumsfeld",
        "George_W_Bush",
        "Gerhard_Schroeder",
        "Hugo_Chavez",
        "Tony_Blair",
        "Unknown",
    ]
    unknown = [i for i in listing.items if i.class_name == "Unknown"]
    assert len(unknown) == 20 and len({i.path.split("/")[0] for i in unknown}) == 20
    again = select_people(LFW, people=7, min_images=70, unknown=20, seed=0)
    assert [i.path for i in again.items] == [i.path for i in listing.items]
    capped = select_people(LFW, people=3, unknown=5, max_per_person=10, seed=0)
    assert len(capped.items) == 35


def test_sample_import_end_to_end(yunet_home: Path, assets: Path) -> None:
    listing = select_people(LFW, people=3, unknown=12, max_per_person=12, seed=0)
    report = import_dataset(listing, "lfw3", source_label=str(LFW))
    assert report.count("stored") >= 46 and report.count("faces_found") >= 46
    ds = load_dataset("lfw3")
    assert len(ds.classes) == 4 and ds.stored[0].source.startswith(str(LFW))
    ds.check_trainable()


def test_fetch_lfw_offline_says_what_to_do(tmp_path: Path) -> None:
    """The real scikit-learn loader runs; with no internet it fails with a clear message."""
    with pytest.raises(DownloadError, match="--source"):
        fetch_lfw(tmp_path / "dl")


def test_fetch_lfw_uses_existing_download(assets: Path, tmp_path: Path) -> None:
    folder = make_people_tree(tmp_path / "dl" / "lfw_home" / "lfw_funneled", {"Colin_Powell": 2})
    assert fetch_lfw(tmp_path / "dl") == folder


def test_augment_writes_copies_of_train_only(yunet_home: Path, people_tree: Path) -> None:
    from facecore.data.augment import augment_dataset

    import_dataset(people_tree, "faces")
    before = snapshot(yunet_home / "datasets" / "faces")
    report = augment_dataset("faces", copies=2, out="faces-aug2")
    assert report["train_images"] == 24 and report["augmented"] == 48
    src, aug = load_dataset("faces"), load_dataset("faces-aug2")
    assert snapshot(src.path) == before
    assert len(aug.items("train")) == 72
    for split in ("val", "test"):
        assert [p.name for p, _ in aug.items(split)] == [p.name for p, _ in src.items(split)]
    row = next(r for r in aug.rows if r.status == "augmented")
    original = np.asarray(Image.open(src.path / row.source), dtype=np.float32)
    copy = np.asarray(Image.open(aug.path / row.file), dtype=np.float32)
    assert copy.shape == original.shape and np.abs(copy - original).mean() > 2
    assert aug.meta["augmented_from"] == "faces"
