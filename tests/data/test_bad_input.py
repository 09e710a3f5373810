"""Bad input: each case gets a specific message, the good files still import, nothing saved is lost."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecore.data.dataset import import_dataset, load_dataset
from facecore.data.images import load_rgb
from facecore.data.sources import ZipLimits
from facecore.errors import DatasetError, ImageError, ImageTooLargeError, UnsafeArchiveError
from tests.helpers import LFW, snapshot

FACE = LFW / "Tony_Blair" / "Tony_Blair_0030.jpg"  # not in the people_tree fixture


@pytest.fixture
def saved(yunet_home: Path, people_tree: Path) -> tuple[Path, dict[str, str]]:
    """A dataset imported before the bad input arrives, and a snapshot of its files."""
    import_dataset(people_tree, "faces")
    folder = yunet_home / "datasets" / "faces"
    return folder, snapshot(folder)


def problems(report) -> dict[str, str]:
    return {p["path"]: p["message"] for p in report.problems}


def appended_ok(folder: Path, before: dict[str, str]) -> None:
    """Everything saved before is still there, byte for byte, with the same split."""
    after = snapshot(folder)
    images = {k: v for k, v in before.items() if k.endswith(".jpg")}
    assert {k: after.get(k) for k in images} == images


def test_corrupt_truncated_empty_and_fake_images(saved, tmp_path: Path) -> None:
    folder, before = saved
    src = tmp_path / "bad" / "Tony_Blair"
    src.mkdir(parents=True)
    data = FACE.read_bytes()
    (src / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (src / "empty.jpg").write_bytes(b"")
    (src / "notes.jpg").write_text("this is not a picture")
    (src / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (src / "good.jpg").write_bytes(data)
    report = import_dataset(tmp_path / "bad", "faces", mode="append")
    msgs = problems(report)
    assert "truncated" in msgs["Tony_Blair/truncated.jpg"] or "corrupt" in msgs["Tony_Blair/truncated.jpg"]
    assert "empty (0 bytes)" in msgs["Tony_Blair/empty.jpg"]
    assert "not an image file" in msgs["Tony_Blair/notes.jpg"]
    assert "Tony_Blair/garbage.png" in msgs
    assert report.classes["Tony_Blair"]["stored"] == 1
    appended_ok(folder, before)
    rows = load_dataset("faces").rows
    assert sum(r.status == "error" for r in rows) == 4


def test_image_over_the_pixel_limit(saved, tmp_path: Path) -> None:
    folder, before = saved
    src = tmp_path / "bad" / "Tony_Blair"
    src.mkdir(parents=True)
    Image.new("L", (8000, 6000)).save(src / "huge.png")  # 48 MP, a few KB on disk
    (src / "good.jpg").write_bytes(FACE.read_bytes())
    report = import_dataset(tmp_path / "bad", "faces", mode="append")
    assert "8000x6000 pixels is over the limit" in problems(report)["Tony_Blair/huge.png"]
    appended_ok(folder, before)
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        load_rgb(src / "huge.png")
    with pytest.raises(ImageTooLargeError, match="bytes is over the limit"):
        load_rgb(FACE, max_bytes=1000)


def zip_with(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_zip_entries_that_escape_are_refused(saved, tmp_path: Path) -> None:
    folder, before = saved
    face = FACE.read_bytes()
    archive = zip_with(
        tmp_path / "evil.zip",
        {
            "../evil.jpg": face,
            "Tony_Blair/../../escape.jpg": face,
            "/etc/abs.jpg": face,
            "C:/windows/drive.jpg": face,
            "Tony_Blair/good.jpg": face,
        },
    )
    with zipfile.ZipFile(archive, "a") as zf:  # a symlink entry
        info = zipfile.ZipInfo("Tony_Blair/link.jpg")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    report = import_dataset(archive, "faces", mode="append")
    msgs = problems(report)
    assert "'..'" in msgs["../evil.jpg"] and "'..'" in msgs["Tony_Blair/../../escape.jpg"]
    assert "absolute path" in msgs["/etc/abs.jpg"] and "absolute path" in msgs["C:/windows/drive.jpg"]
    assert "symbolic link" in msgs["Tony_Blair/link.jpg"]
    assert report.classes["Tony_Blair"]["stored"] == 1
    appended_ok(folder, before)
    assert not (tmp_path / "escape.jpg").exists() and not (folder.parent / "evil.jpg").exists()


def test_zip_bomb_limits(saved, tmp_path: Path) -> None:
    folder, before = saved
    zeros = b"\0" * 5_000_000
    archive = zip_with(tmp_path / "bomb.zip", {f"Tony_Blair/{i}.jpg": zeros for i in range(4)})
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):
            zf.writestr(f"Tony_Blair/{i}.jpg", zeros)
    with pytest.raises(UnsafeArchiveError, match="declares 20,000,000 bytes"):
        import_dataset(archive, "faces", mode="append", limits=ZipLimits(max_total_bytes=10_000_000))
    with pytest.raises(UnsafeArchiveError, match="4 entries is over the limit of 3"):
        import_dataset(archive, "faces", mode="append", limits=ZipLimits(max_entries=3))
    # Each entry alone: compression ratio ~5000:1 -> refused, import goes on with nothing usable.
    with pytest.raises(DatasetError, match="ratio"):
        import_dataset(archive, "faces2")
    assert snapshot(folder) == before


def test_zip_whose_headers_lie_about_size(saved, tmp_path: Path) -> None:
    """Declared sizes understated: the bytes actually read are checked, the entry is refused."""
    folder, before = saved
    big = np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    payload = buf.getvalue()
    archive = tmp_path / "liar.zip"
    zip_with(archive, {"Tony_Blair/liar.png": payload, "Tony_Blair/good.jpg": FACE.read_bytes()})
    raw = bytearray(archive.read_bytes())
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        pos = raw.find(sig)
        struct.pack_into("<I", raw, pos + off, 1000)  # uncompressed size := 1000
    archive.write_bytes(bytes(raw))
    report = import_dataset(archive, "faces", mode="append")
    assert "Tony_Blair/liar.png" in problems(report)
    assert report.classes["Tony_Blair"]["stored"] == 1
    appended_ok(folder, before)


def test_not_a_zip_and_damaged_zip(saved, tmp_path: Path) -> None:
    folder, before = saved
    (tmp_path / "x.zip").write_text("hello")
    with pytest.raises(UnsafeArchiveError, match="not a folder and not a zip"):
        import_dataset(tmp_path / "x.zip", "faces", mode="append")
    assert snapshot(folder) == before


def test_nested_zip_case_duplicates_and_non_utf8_names(saved, tmp_path: Path) -> None:
    folder, before = saved
    face = FACE.read_bytes()
    archive = zip_with(
        tmp_path / "odd.zip",
        {
            "Tony_Blair/inner.zip": b"PK\x05\x06" + b"\0" * 18,
            "Tony_Blair/Face.jpg": face,
            "Tony_Blair/face.JPG": face,
        },
    )
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("Tony_Blair/cafQ.jpg", LFW.joinpath("Tony_Blair", "Tony_Blair_0031.jpg").read_bytes())
    # Make that name a raw Latin-1 byte (not UTF-8, no UTF-8 flag), as old Windows zip tools do.
    archive.write_bytes(archive.read_bytes().replace(b"cafQ.jpg", b"caf\xe9.jpg"))
    report = import_dataset(archive, "faces", mode="append")
    assert any("not UTF-8" in w for w in report.warnings)
    msgs = problems(report)
    assert "nested zip" in msgs["Tony_Blair/inner.zip"]
    assert "differing only in letter case" in msgs["Tony_Blair/face.JPG"]
    assert report.classes["Tony_Blair"]["stored"] == 2
    appended_ok(folder, before)


def test_empty_class_hidden_files_and_stray_files(yunet_home: Path, people_tree: Path) -> None:
    (people_tree / "Nobody").mkdir()
    (people_tree / ".DS_Store").write_bytes(b"\0")
    (people_tree / "__MACOSX").mkdir()
    (people_tree / "__MACOSX" / "._x.jpg").write_bytes(b"\0")
    (people_tree / "Colin_Powell" / ".hidden.jpg").write_bytes(b"\0")
    (people_tree / "loose.jpg").write_bytes(FACE.read_bytes())
    report = import_dataset(people_tree, "faces")
    assert any("'Nobody' holds no usable images" in w for w in report.warnings)
    assert "not inside a class folder" in problems(report)["loose.jpg"]
    assert set(problems(report)) == {"loose.jpg"}
    assert "__MACOSX" not in load_dataset("faces").classes


def test_no_usable_image_writes_nothing(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "src" / "A"
    src.mkdir(parents=True)
    (src / "a.jpg").write_text("nope")
    with pytest.raises(DatasetError, match="No usable face images"):
        import_dataset(tmp_path / "src", "x", detector="haar")
    assert not (home / "datasets" / "x").exists()
    assert not list((home / "datasets").glob(".staging-*"))


def test_failure_midway_leaves_previous_dataset(saved, tmp_path: Path, monkeypatch) -> None:
    """An exception in the middle of an append (disk full, a bug) changes nothing saved."""
    folder, before = saved
    from facecore.data import importer

    calls = {"n": 0}
    real = importer._import_one

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(importer, "_import_one", flaky)
    src = tmp_path / "more"
    (src / "Tony_Blair").mkdir(parents=True)
    for f in sorted((LFW / "Tony_Blair").glob("*.jpg"))[10:15]:
        (src / "Tony_Blair" / f.name).write_bytes(f.read_bytes())
    with pytest.raises(OSError, match="No space"):
        import_dataset(src, "faces", mode="append")
    assert snapshot(folder) == before
    assert not list(folder.parent.glob(".staging-*"))


@pytest.mark.parametrize(
    "mode,maker",
    [
        ("CMYK", lambda: Image.new("CMYK", (64, 48), (0, 255, 255, 0))),
        ("RGBA", lambda: Image.new("RGBA", (64, 48), (255, 0, 0, 0))),
        ("P", lambda: Image.new("RGB", (64, 48), (0, 0, 255)).convert("P")),
        ("L", lambda: Image.new("L", (64, 48), 128)),
        ("I;16", lambda: Image.fromarray(np.full((48, 64), 65535, dtype=np.uint16))),
        ("1x1", lambda: Image.new("RGB", (1, 1), (1, 2, 3))),
    ],
)
def test_image_modes_decode_to_rgb(mode: str, maker, tmp_path: Path) -> None:
    img = maker()
    fmt = "JPEG" if img.mode in ("CMYK", "L") else "PNG"
    path = tmp_path / f"x.{fmt.lower()}"
    img.save(path, format=fmt)
    arr = load_rgb(path)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    assert arr.shape[:2] == (img.height, img.width)
    expected = {
        "CMYK": (255, 0, 0),
        "RGBA": (255, 255, 255),
        "P": (0, 0, 255),
        "L": (128, 128, 128),
        "I;16": (255, 255, 255),
        "1x1": (1, 2, 3),
    }[mode]
    assert np.abs(arr[0, 0].astype(int) - expected).max() <= 3


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (60, 40), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 30, 40))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    img.save(tmp_path / "r.jpg", exif=exif, quality=100)
    arr = load_rgb(tmp_path / "r.jpg")
    assert arr.shape[:2] == (60, 40)
    assert arr[5, 20, 2] > 200 and arr[55, 20, 0] > 200  # blue on top after the rotation


def test_pgm_and_webp_and_bmp_are_accepted(assets: Path, tmp_path: Path) -> None:
    """(``assets``: FACE is one of them; without them the test skips, as the others do.)"""
    face = Image.open(FACE)
    for ext in ("pgm", "webp", "bmp"):
        (face.convert("L") if ext == "pgm" else face).save(tmp_path / f"f.{ext}")
        assert load_rgb(tmp_path / f"f.{ext}").shape == (250, 250, 3)
    Image.new("RGB", (10, 10)).save(tmp_path / "f.gif")
    with pytest.raises(ImageError, match="GIF images are not supported"):
        load_rgb(tmp_path / "f.gif")


def test_dot_segments_in_zip_names_are_read_not_dropped(saved, tmp_path: Path) -> None:
    """``./Tony_Blair/x.jpg`` (zips made with ``zip -r ./``) imports; ``./x.jpg`` is reported.
    Found by the hypothesis fuzz test: such entries used to vanish without a word."""
    folder, before = saved
    face = FACE.read_bytes()
    archive = zip_with(tmp_path / "dots.zip", {"./Tony_Blair/./dot.jpg": face, "./loose.jpg": face})
    report = import_dataset(archive, "faces", mode="append")
    assert report.classes["Tony_Blair"]["stored"] == 1
    assert "not inside a class folder" in problems(report)["./loose.jpg"]
    appended_ok(folder, before)


def test_a_10000_pixel_wide_photo_and_a_1x1_image_in_an_import(saved, tmp_path: Path) -> None:
    """A 10,000 x 400 panorama with a real face in it is searched and cropped; a 1x1 image is
    reported as having no face; the saved faces stay."""
    folder, before = saved
    wide = Image.new("RGB", (10_000, 400), (90, 90, 90))
    wide.paste(Image.open(FACE).convert("RGB"), (6000, 75))
    wide.save(tmp_path / "wide.jpg", quality=92)
    Image.new("RGB", (1, 1), (1, 2, 3)).save(tmp_path / "dot.png")
    archive = zip_with(
        tmp_path / "odd.zip",
        {
            "Tony_Blair/wide.jpg": (tmp_path / "wide.jpg").read_bytes(),
            "Tony_Blair/dot.png": (tmp_path / "dot.png").read_bytes(),
        },
    )
    report = import_dataset(archive, "faces", mode="append")
    assert report.classes["Tony_Blair"]["stored"] == 1, report.problems
    assert "Tony_Blair/dot.png" in report.no_face
    row = next(r for r in load_dataset("faces").rows if r.source.endswith("Tony_Blair/wide.jpg"))
    x = int(row.box.split()[0]) if row.box else -1
    assert 5900 < x < 6250, row.box  # the face, found where it was pasted
    appended_ok(folder, before)


def test_class_names_with_spaces_unicode_and_characters_invalid_on_disk(
    yunet_home: Path, tmp_path: Path
) -> None:
    """Folder names become class names: unicode and spaces kept, characters that some file systems
    refuse replaced, reserved Windows names escaped; each is a valid folder on every system."""
    faces = sorted((LFW / "Colin_Powell").glob("*.jpg"))
    names = {"Zoë Ünal": "Zoë Ünal", "Ann Lee": "Ann Lee", "Tom: Jr?": "Tom_ Jr_", "CON": "_CON"}
    archive = zip_with(
        tmp_path / "names.zip",
        {
            f"{folder}/{i}-{j}.jpg": faces[4 * i + j].read_bytes()
            for i, folder in enumerate(names)
            for j in range(3)
        },
    )
    report = import_dataset(archive, "names")
    ds = load_dataset("names")
    assert sorted(ds.classes) == sorted(names.values()), (ds.classes, report.problems)
    for cls in ds.classes:
        assert (ds.path / "images" / cls).is_dir() or any(r.class_name == cls for r in ds.stored)
