"""The public API (``import facecore``) on real faces, and the README's example run as written."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facecore
from facecore.errors import EnrollmentError, GalleryError, GalleryExistsError, ImageError
from tests.helpers import LFW, ROOT

ENROLLED = ("Colin_Powell", "Tony_Blair", "Hugo_Chavez")
GROUP = LFW / "Colin_Powell" / "Colin_Powell_0010.jpg"  # Colin Powell and two faces behind him


def readme_example() -> str:
    """The python block of the README's "Use it from Python" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it from Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section has one python example"
    return blocks[0]


def singles(n: int) -> list[Path]:
    people = sorted(p for p in LFW.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) == 1)
    return [next(p.glob("*.jpg")) for p in people[:n]]


@pytest.fixture
def enrolled(home: Path, assets: Path) -> facecore.Gallery:
    gallery = facecore.Gallery.create("team")
    for person in ENROLLED:
        gallery.enroll(person, sorted((LFW / person).glob("*.jpg"))[:5])
    return gallery


def test_import_is_light_and_lists_the_api() -> None:
    code = "import sys, facecore; print('torch' in sys.modules, sorted(facecore.__all__))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("False")  # names load on first use
    for name in ("create_model", "list_models", "load_run", "Gallery", "detect_faces"):
        assert name in out
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        facecore.nope  # noqa: B018


def test_registry_through_the_top_level() -> None:
    assert {"resnet50_pretrained", "resnet50_scratch", "custom_cnn"} <= set(facecore.list_models())
    net = facecore.create_model("custom_cnn", num_classes=4)
    import torch

    assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 4)


def test_detect_faces_takes_paths_bytes_pil_and_rgb_arrays(assets: Path, home: Path) -> None:
    by_path = facecore.detect_faces(GROUP)
    assert len(by_path) == 3 and by_path[0].landmarks is not None
    rgb = np.asarray(Image.open(GROUP).convert("RGB"))
    for image in (str(GROUP), GROUP.read_bytes(), Image.open(GROUP), rgb, np.dstack([rgb, rgb[..., :1]])):
        assert [d.box for d in facecore.detect_faces(image)] == [d.box for d in by_path]
    gray = facecore.detect_faces(rgb.mean(axis=2).astype(np.uint8))
    assert gray and gray[0].box[0] == pytest.approx(by_path[0].box[0], abs=6)
    with pytest.raises(ImageError, match="uint8"):
        facecore.detect_faces(rgb.astype(np.float32))
    with pytest.raises(ImageError, match="H x W x 3"):
        facecore.detect_faces(rgb[..., :2])
    with pytest.raises(ImageError, match="list"):
        facecore.detect_faces([1, 2, 3])  # type: ignore[arg-type]


def test_gallery_names_enrolled_people_and_not_strangers(enrolled: facecore.Gallery) -> None:
    assert sorted(enrolled.people) == sorted(ENROLLED) and not enrolled.calibrated
    for person in ENROLLED:
        held_out = sorted((LFW / person).glob("*.jpg"))[6]
        box, name, score = enrolled.identify(held_out)[0]
        assert name == person and score >= enrolled.threshold and len(box) == 4
    strangers = [enrolled.identify(p) for p in singles(20)]
    named = [faces[0].name for faces in strangers if faces]
    assert len(named) >= 18 and named.count("Unknown") >= 17
    # an override threshold of 1.0 names nobody; the saved threshold is untouched
    assert {f.name for f in enrolled.identify(GROUP, threshold=1.0)} == {"Unknown"}
    assert facecore.Gallery.open("team").threshold == enrolled.threshold


def test_gallery_open_create_and_enroll_refusals(enrolled: facecore.Gallery, assets: Path) -> None:
    with pytest.raises(GalleryError, match="nobody"):
        facecore.Gallery.open("nobody")
    with pytest.raises(GalleryExistsError):
        facecore.Gallery.create("team")
    assert facecore.Gallery.create("team", exist_ok=True).people == enrolled.people
    with pytest.raises(GalleryExistsError, match="dlib_resnet"):
        facecore.Gallery.create("team", embedder="dlib_resnet", exist_ok=True)
    sky = np.asarray(Image.open(assets / "detection" / "dogs.jpg").convert("RGB"))[:200]
    with pytest.raises(EnrollmentError, match="No face"):
        enrolled.enroll("Sky", sky)
    assert "Sky" not in facecore.Gallery.open("team").people
    # arrays and PIL images enroll like files
    report = enrolled.enroll(
        "George_W_Bush", [Image.open(p) for p in sorted((LFW / "George_W_Bush").glob("*.jpg"))[:3]]
    )
    assert report.total == 3


def test_gallery_calibrate_from_a_folder(enrolled: facecore.Gallery, tmp_path: Path) -> None:
    folder = tmp_path / "strangers"
    folder.mkdir()
    for f in singles(110):
        shutil.copy(f, folder / f.name)
    stored = enrolled.calibrate(folder)
    again = facecore.Gallery.open("team")
    assert again.calibrated and again.threshold == pytest.approx(stored["threshold"])


def test_load_run_predicts_photos_and_crops(trained_home: Path) -> None:
    run = facecore.load_run("tiny-cnn")
    assert sorted(run.classes) == sorted([*ENROLLED, "Unknown"]) and "tiny-cnn" in repr(run)
    faces = run.predict(GROUP)
    assert len(faces) == 3 and all(name in run.classes for _, name, _ in faces)
    assert faces[0].box == facecore.detect_faces(GROUP)[0].box
    # a crop as the dataset has it: the whole image is one face
    crop = next((trained_home / "datasets" / "faces").rglob("*.jpg"))
    (one,) = run.predict(crop, detect=False)
    assert one.box[:2] == (0, 0) and 0 <= one.score <= 1
    assert run.predict(crop, detect=False, threshold=1.01)[0].name == "Unknown"
    # its ONNX export (python -m facecore export) loads the same way and says the same
    from facecore.live.export import export_run

    onnx = facecore.load_run(export_run("tiny-cnn")["onnx_path"])
    assert onnx.classes == run.classes and onnx.threshold == pytest.approx(run.threshold)
    assert [(b, n) for b, n, _ in onnx.predict(GROUP)] == [(b, n) for b, n, _ in faces]


def readme_folder(work: Path, home: Path) -> Path:
    """The folder the README's example expects: photos/<person>/, strangers/, group.jpg, and the run
    ``my-run`` (a copy of the trained ``tiny-cnn``) in the workspace ``home``."""
    for person in ENROLLED:
        (work / "photos" / person).mkdir(parents=True)
        for f in sorted((LFW / person).glob("*.jpg"))[:5]:
            shutil.copy(f, work / "photos" / person / f.name)
    (work / "strangers").mkdir()
    for f in singles(110):
        shutil.copy(f, work / "strangers" / f.name)
    shutil.copy(GROUP, work / "group.jpg")
    shutil.copytree(home / "models" / "tiny-cnn", home / "models" / "my-run")
    return work


def check_readme_output(text: str) -> None:
    lines = text.splitlines()
    assert "custom_cnn" in lines[0]
    assert sum("Enrolled 5 face(s) into gallery 'team'" in line for line in lines) == 3
    faces = [line for line in lines if line.startswith("(")]
    assert len(faces) == 3 + 3 + 3  # detect, identify, predict: three faces in group.jpg
    identified = faces[3:6]
    assert "Colin_Powell" in identified[0] and all("Unknown" in line for line in identified[1:])


def test_readme_example_runs_as_written(
    trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(readme_folder(tmp_path / "work", trained_home))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(readme_example(), "README.md", "exec"), {"__name__": "__readme__"})
    check_readme_output(out.getvalue())
    assert facecore.Gallery.open("team").calibrated
