"""Galleries on real LFW faces: enroll without training, recognise, calibrate, evaluate, refuse bad input.

The default embedder (SFace) embeds the faces unless a test names dlib's descriptor
(``dlib_resnet``); the tests enroll a few photos each.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facecore.data.images import encode_jpeg, load_rgb
from facecore.errors import (
    EmbedderError,
    EnrollmentError,
    GalleryError,
    GalleryMismatchError,
    ReadOnlyModeError,
)
from facecore.gallery.calibrate import calibrate_gallery
from facecore.gallery.dlib_embedder import dlib_problem
from facecore.gallery.edit import (
    create_gallery,
    delete_gallery,
    enroll_crops,
    rebuild_gallery,
    remove_person,
    rename_person,
)
from facecore.gallery.embedder_registry import create_embedder
from facecore.gallery.enroll import enroll_dataset, enroll_photos, enroll_source, recrop
from facecore.gallery.evaluate import cached_gallery_evaluation, evaluate_gallery
from facecore.gallery.match import GalleryModel, Matcher, load_gallery_model
from facecore.gallery.store import gallery_path, list_galleries, load_gallery
from facecore.live.inference import Predictor
from tests.helpers import LFW, make_people_tree

pytestmark = pytest.mark.skipif(dlib_problem() is not None, reason=f"dlib embedder: {dlib_problem()}")
PEOPLE = ("Colin_Powell", "Tony_Blair", "Hugo_Chavez")


def photos(person: str, start: int, stop: int) -> list[tuple[str, Path]]:
    files = sorted((LFW / person).glob("*.jpg"))[start:stop]
    return [(f.name, f) for f in files]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the sha256 of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def five_each(yunet_home: Path, assets: Path) -> str:
    """Gallery ``team``: the first 5 LFW photos of each of three people (largest face of each)."""
    for person in PEOPLE:
        enroll_photos("team", person, photos(person, 0, 5), largest=True)
    return "team"


def test_five_photos_enroll_a_person_and_their_other_photos_are_recognised(five_each: str) -> None:
    g = load_gallery(five_each)
    assert g.counts() == {p: 5 for p in sorted(PEOPLE)}
    assert g.embeddings.shape == (15, 128)
    assert np.allclose(np.linalg.norm(g.embeddings, axis=1), 1.0, atol=1e-5)
    predictor = Predictor(["gallery:team"], detector="auto")
    right = total = 0
    for person in PEOPLE:
        for _, path in photos(person, 5, 10):  # photos never enrolled, no training anywhere
            faces = predictor.predict(load_rgb(path))
            assert faces, f"no face found in {path.name}"
            total += 1
            right += faces[0].predictions[0].label == person
    assert total == 15 and right >= 14, f"{right} of {total} named correctly"


def test_a_stranger_is_unknown_at_the_calibrated_threshold(five_each: str, tmp_path: Path) -> None:
    strangers = make_people_tree(tmp_path / "strangers", {}, unknown=40)
    out = calibrate_gallery(five_each, strangers=strangers, target_far=0.05)
    assert out["calibrated"] and out["n_strangers"] == 40
    assert out["far"] <= 0.05
    g = load_gallery(five_each)
    assert g.threshold == pytest.approx(out["threshold"]) and g.calibration()["sweep"]
    # the 40 strangers' faces: at most 5% accepted, as calibrated (the same faces: exact)
    model = load_gallery_model(five_each)
    crops = [load_rgb(p) for p in sorted((tmp_path / "strangers" / "Unknown").glob("*.jpg"))]
    from facecore.detect.detectors import create_detector
    from facecore.gallery.enroll import face_of_photo

    det = create_detector("auto")
    faces = [face_of_photo(c, det, margin=model.margin, largest=True).crop for c in crops]
    preds = model.predictions(model.classify(faces)[0])
    assert sum(not p.unknown for p in preds) <= 2


@pytest.mark.parametrize("embedder", ["sface", "dlib_resnet"])
def test_without_strangers_the_measured_default_is_kept_and_said(
    yunet_home: Path, assets: Path, embedder: str
) -> None:
    enroll_photos("solo", "Colin_Powell", photos("Colin_Powell", 0, 3), largest=True, embedder=embedder)
    g = load_gallery("solo")
    assert g.embedder_name == embedder and not g.calibrated
    assert g.threshold == pytest.approx(create_embedder(embedder).default_threshold)
    assert "measured on 125 LFW strangers" in g.threshold_info["reason"]
    assert "gallery calibrate solo --strangers" in g.uncalibrated_note()


def test_matcher_is_the_best_face_or_the_mean_of_the_three_best() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(11, 8)).astype(np.float32)
    person = ["a"] * 5 + ["b"] * 2 + ["c"] * 4
    queries = rng.normal(size=(4, 8)).astype(np.float32)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q @ unit.T
    for match in ("max", "top3"):
        got = Matcher(emb, person, match=match).scores(queries)
        for j, p in enumerate(["a", "b", "c"]):
            cols = np.sort(sims[:, [i for i, x in enumerate(person) if x == p]], axis=1)[:, ::-1]
            want = cols[:, 0] if match == "max" else cols[:, :3].mean(axis=1)
            assert np.allclose(got[:, j], want, atol=1e-5), (match, p)


def test_dataset_enrollment_leaves_unknown_out_and_evaluates_like_a_run(small_dataset: str) -> None:
    report = enroll_dataset("g", small_dataset)
    assert set(report.added) == set(PEOPLE) and "Unknown" not in load_gallery("g").people
    out = calibrate_gallery("g", dataset=small_dataset, split="train", allow_few=True)
    assert out["n_strangers"] == 6 and out["n_known"] == 18 and out["coarse"]
    r = evaluate_gallery("g", small_dataset, latency=False)
    assert r.n_images == 4 and r.classes[-1] == "Unknown"
    assert 0.0 <= r.accuracy <= 1.0 and r.rank1_known == 1.0
    assert np.array(r.confusion_matrix).sum() == 4
    from facecore.evaluate.compare import summary_row

    row = summary_row("gallery:g", r)  # the Compare page's table row, as for a run
    assert row["accuracy"] == r.accuracy and row["threshold"] == pytest.approx(load_gallery("g").threshold)
    assert cached_gallery_evaluation("g", small_dataset).accuracy == r.accuracy
    enroll_photos("g", "Colin_Powell", photos("Colin_Powell", 20, 21), largest=True)
    assert cached_gallery_evaluation("g", small_dataset) is None  # the gallery changed


def test_a_photo_with_no_face_or_two_faces_is_refused_and_nothing_is_lost(
    five_each: str, assets: Path
) -> None:
    before = snapshot(gallery_path(five_each))
    sky = encode_jpeg(load_rgb(assets / "detection" / "dogs.jpg")[:400])
    with pytest.raises(EnrollmentError, match="sky.jpg.*no face found"):
        enroll_photos(five_each, "Colin_Powell", [("sky.jpg", sky)])
    group = (assets / "detection" / "2008_002506.jpg").read_bytes()
    with pytest.raises(EnrollmentError, match=r"faces found and the largest is only .*x the area"):
        enroll_photos(five_each, "Colin_Powell", [("group.jpg", group)])
    with pytest.raises(EnrollmentError, match="not an image"):
        enroll_photos(five_each, "Colin_Powell", [("notes.jpg", b"these are notes, not a photo")])
    assert snapshot(gallery_path(five_each)) == before
    report = enroll_photos(five_each, "Colin_Powell", [("sky.jpg", sky), *photos("Colin_Powell", 5, 6)])
    assert report.added == {"Colin_Powell": 1} and report.problems[0]["source"] == "sky.jpg"


def test_unknown_is_not_a_person(yunet_home: Path, assets: Path) -> None:
    with pytest.raises(GalleryError, match="Unknown"):
        enroll_photos("g", "unknown", photos("Colin_Powell", 0, 1))


def test_a_hand_edited_gallery_is_refused_then_rebuilt(five_each: str) -> None:
    path = gallery_path(five_each)
    gone = sorted((path / "faces" / "Tony_Blair").glob("*.jpg"))[0]
    gone.unlink()
    with pytest.raises(GalleryError, match="edited by hand.*gallery rebuild team"):
        load_gallery(five_each)
    shutil.copy(
        sorted((path / "faces" / "Colin_Powell").glob("*.jpg"))[0], path / "faces" / "Hugo_Chavez" / "x.jpg"
    )
    g = rebuild_gallery(five_each)
    assert g.counts() == {"Colin_Powell": 5, "Hugo_Chavez": 6, "Tony_Blair": 4}


def test_a_corrupt_embeddings_file_names_the_file_and_the_fix(five_each: str) -> None:
    path = gallery_path(five_each) / "embeddings.npz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(GalleryError, match=r"embeddings.npz is damaged.*gallery rebuild team"):
        load_gallery(five_each)
    with pytest.raises(GalleryError, match="damaged"):
        enroll_photos(five_each, "Colin_Powell", photos("Colin_Powell", 5, 6))
    assert rebuild_gallery(five_each).counts() == {p: 5 for p in sorted(PEOPLE)}
    (gallery_path(five_each) / "gallery.json").write_text("{not json")
    with pytest.raises(GalleryError, match="gallery.json is damaged"):
        load_gallery(five_each)


def test_a_gallery_used_with_another_embedder_is_refused(trained_home: Path) -> None:
    enroll_dataset("by-cnn", "faces", embedder="run:tiny-cnn")
    g = load_gallery("by-cnn")
    assert g.embedder_name == "run:tiny-cnn" and g.embeddings.shape[1] == 64 * 28 * 28
    model = load_gallery_model("by-cnn")
    assert model.predictions(model.classify([load_rgb(g.path / g.files[0])])[0])[0].raw_label == g.person[0]
    with pytest.raises(GalleryMismatchError, match=r"built with the run:tiny-cnn embedder.*dlib_resnet"):
        load_gallery_model("by-cnn", embedder="dlib_resnet")
    with pytest.raises(EmbedderError, match="Unknown embedder"):
        create_embedder("facenet")
    moved = rebuild_gallery("by-cnn", embedder="dlib_resnet")  # the crops are kept: move it
    assert moved.embedder_name == "dlib_resnet" and moved.embeddings.shape[1] == 128
    assert not moved.threshold_info["calibrated"]


def test_an_empty_gallery_says_so(yunet_home: Path) -> None:
    create_gallery("empty")
    with pytest.raises(GalleryError, match="is empty: enroll someone first"):
        Predictor(["gallery:empty"])
    with pytest.raises(GalleryError, match="exists already"):
        create_gallery("empty")
    with pytest.raises(GalleryError, match="No gallery 'nope'"):
        load_gallery("nope")


def test_remove_rename_delete(five_each: str) -> None:
    g = rename_person(five_each, "Hugo_Chavez", "Hugo")
    assert g.counts()["Hugo"] == 5 and (g.path / "faces" / "Hugo").is_dir()
    with pytest.raises(GalleryError, match="already"):
        rename_person(five_each, "Hugo", "Tony_Blair")
    g = remove_person(five_each, "Tony_Blair")
    assert g.people == ["Colin_Powell", "Hugo"] and len(g.files) == 10
    assert load_gallery_model(five_each).classes == ["Colin_Powell", "Hugo"]
    delete_gallery(five_each)
    assert list_galleries() == []


def test_a_failed_write_leaves_the_saved_gallery_as_it_was(five_each: str, monkeypatch) -> None:
    before = snapshot(gallery_path(five_each))
    import facecore.gallery.edit as edit

    def broken(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(edit, "_write_meta", broken)
    with pytest.raises(OSError, match="disk full"):
        enroll_photos(five_each, "Colin_Powell", photos("Colin_Powell", 6, 7))
    assert snapshot(gallery_path(five_each)) == before
    assert not [p for p in gallery_path(five_each).parent.iterdir() if p.name.startswith(".staging")]


def test_galleries_are_read_only_in_presentation_mode(five_each: str, monkeypatch) -> None:
    before = snapshot(gallery_path(five_each))
    monkeypatch.setenv("FACECORE_MODE", "demo")
    for call in (
        lambda: enroll_photos(five_each, "Colin_Powell", photos("Colin_Powell", 5, 6)),
        lambda: remove_person(five_each, "Colin_Powell"),
        lambda: rename_person(five_each, "Colin_Powell", "Colin"),
        lambda: delete_gallery(five_each),
        lambda: rebuild_gallery(five_each),
        lambda: create_gallery("new"),
        lambda: calibrate_gallery(five_each, dataset="any"),
    ):
        with pytest.raises(ReadOnlyModeError, match="presentation mode"):
            call()
    assert snapshot(gallery_path(five_each)) == before
    # recognising still works
    face = load_rgb(photos("Colin_Powell", 5, 6)[0][1])
    assert Predictor(["gallery:team"]).predict(face)[0].predictions[0].label == "Colin_Powell"


def test_recrop_keeps_the_face_box() -> None:
    crop = np.zeros((256, 256, 3), np.uint8)
    crop[64:192, 64:192] = 255  # the face box of a margin-0.5 crop: side 256 / 2
    out = recrop(crop, 0.5, 0.0)
    assert out.shape == (256, 256, 3) and out[8:-8, 8:-8].min() == 255


def test_enroll_from_a_folder_skips_unknown_and_reports_bad_files(
    yunet_home: Path, people_tree: Path, tmp_path: Path
) -> None:
    (people_tree / "Colin_Powell" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    report = enroll_source("f", people_tree, largest=True)
    assert set(report.added) == set(PEOPLE) and report.total >= 22
    assert any(p["source"].endswith("broken.jpg") for p in report.problems)
    data = json.loads((gallery_path("f") / "gallery.json").read_text())
    assert data["embedder"]["name"] == "sface" and "Unknown" not in data["people"]


def test_enroll_crops_skips_duplicates(yunet_home: Path, assets: Path) -> None:
    crop = load_rgb(sorted((LFW / "Colin_Powell").glob("*.jpg"))[0])[3:-3, 3:-3]
    enroll_crops("d", [("Colin_Powell", crop)])
    report = enroll_crops("d", [("Colin_Powell", crop)])
    assert report.total == 0 and report.duplicates == 1
    assert isinstance(load_gallery_model("d"), GalleryModel)


def test_compare_puts_a_gallery_beside_the_runs(trained_home: Path, tmp_path: Path) -> None:
    from facecore.evaluate.compare import compare_runs

    enroll_dataset("faces", "faces", embedder="dlib_resnet")
    result = compare_runs(["tiny-cnn"], galleries=["faces"], out=tmp_path / "report", latency=False)
    assert [r["label"] for r in result["runs"]] == ["tiny-cnn", "gallery:faces"]
    gallery_row = result["runs"][1]
    assert gallery_row["model"] == "gallery (dlib_resnet)" and gallery_row["params_trainable"] == 0
    assert set(result["confusion_matrices"]) == {"tiny-cnn", "gallery:faces"}
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| gallery (dlib_resnet) | gallery:faces |" in text and "0 / n/a" in text
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000


def test_the_pytorch_port_gives_dlibs_own_descriptors(assets: Path) -> None:
    from facecore.gallery.dlib_embedder import dlib_descriptors

    embedder = create_embedder("dlib_resnet")
    assert embedder.backend == "torch", embedder.backend_problem
    crops = [load_rgb(p)[3:-3, 3:-3] for p in sorted((LFW / "Tony_Blair").glob("*.jpg"))[:6]]
    chips = embedder.chips(crops)
    ours, theirs = embedder.raw(crops), dlib_descriptors(chips, embedder.folder)
    assert ours.shape == theirs.shape == (6, 128)
    assert np.abs(ours - theirs).max() < 1e-4
    assert 1.2 < float(np.linalg.norm(theirs, axis=1).mean()) < 1.6  # the typical norm the default assumes


def test_a_file_that_is_not_dlibs_descriptor_is_refused(tmp_path: Path) -> None:
    from facecore.gallery.dlib_embedder import DLIB_DESCRIPTOR_FILE, dlib_model_dir
    from facecore.gallery.dlib_net import read_weights

    bad = tmp_path / "model.dat"
    bad.write_bytes(b"\x01\x02not a network at all" * 100)
    with pytest.raises(EmbedderError, match="not dlib's ResNet face descriptor"):
        read_weights(bad)
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes((dlib_model_dir() / DLIB_DESCRIPTOR_FILE).read_bytes()[:5_000_000])
    with pytest.raises(EmbedderError, match="truncated|not dlib's ResNet"):
        read_weights(truncated)


def test_webcam_frames_that_pass_the_checks_enroll_a_person(yunet_home: Path, assets: Path) -> None:
    from facecore.data.enroll import EnrollSession
    from facecore.detect.detectors import create_detector
    from facecore.gallery.enroll import enroll_webcam_crops

    session = EnrollSession(create_detector("auto"), target=4)
    for path in sorted((LFW / "Hugo_Chavez").glob("*.jpg"))[:8]:  # camera frames, checked one by one
        session.offer(load_rgb(path), force=True)
    crops = session.take_new()
    assert 1 <= len(crops) <= 4
    report = enroll_webcam_crops("cam", "Hugo", crops)
    assert report.added == {"Hugo": len(crops)}
    with pytest.raises(EnrollmentError, match="No camera frames"):
        enroll_webcam_crops("cam", "Hugo", [])
    other = load_rgb(sorted((LFW / "Hugo_Chavez").glob("*.jpg"))[20])
    assert Predictor(["gallery:cam"]).predict(other)[0].predictions[0].label == "Hugo"


def test_compare_a_gallery_on_a_dataset_without_unknown(yunet_home: Path, tmp_path: Path) -> None:
    """The gallery's confusion matrix has an "Unknown" column the run's has not: each is drawn
    with its own classes (this crashed the HTML report once)."""
    from facecore.data.dataset import import_dataset
    from facecore.data.transforms import AugmentConfig
    from facecore.evaluate.compare import compare_runs
    from facecore.train.config import TrainConfig
    from facecore.train.loop import train

    import_dataset(make_people_tree(tmp_path / "src", {"Colin_Powell": 8, "Tony_Blair": 8}), "two")
    cfg = TrainConfig.for_model(
        "custom_cnn", "two", epochs=1, batch_size=8, workers=0, augment=AugmentConfig.none(),
        run_name="two-cnn",
    )  # fmt: skip
    train(cfg)
    enroll_dataset("two", "two")
    result = compare_runs(["two-cnn"], galleries=["two"], out=tmp_path / "report", latency=False)
    assert len(result["confusion_matrices"]["two-cnn"]) == 2
    assert len(result["confusion_matrices"]["gallery:two"]) == 3  # Colin_Powell, Tony_Blair, Unknown
    assert "gallery:two: confusion matrix" in (tmp_path / "report" / "report.html").read_text()
