"""Inference on real data: a custom_cnn trained briefly on real LFW faces, a real group photo.

One run is trained once for the module (about 10 s on 2 cores); a copy of its folder serves as a
second run, so that two distinct models can be compared on the same faces.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from facecore.data.dataset import UNKNOWN, import_dataset, load_dataset
from facecore.data.loaders import FaceCrops, decode_crops, make_loader
from facecore.data.transforms import eval_transform_from_dict
from facecore.errors import CheckpointError, FacecoreError
from facecore.live.inference import Predictor
from facecore.models.checkpoint import load_model
from facecore.recognize.models import LoadedModel, clear_cache, load_run
from facecore.recognize.nearest import EMBEDDINGS_FILE
from facecore.recognize.results import FacePrediction
from facecore.train.config import TrainConfig
from facecore.train.epoch import evaluate
from facecore.train.loop import train
from tests.helpers import make_people_tree, yunet_workspace

GROUP_PHOTO = "2007_007763.jpg"  # seven faces


@pytest.fixture(scope="module")
def trained(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A workspace with a real dataset, a 2-epoch custom_cnn run ``cnn`` and its copy ``cnn-copy``."""
    root = tmp_path_factory.mktemp("infer")
    home = yunet_workspace(root / "home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACECORE_HOME", str(home))
        mp.delenv("FACECORE_YUNET", raising=False)
        src = make_people_tree(
            root / "src", {"Colin_Powell": 6, "Tony_Blair": 6, "Hugo_Chavez": 6}, unknown=6
        )
        import_dataset(src, "faces", detector="yunet")
        cfg = TrainConfig.for_model("custom_cnn", "faces", epochs=2, batch_size=8, workers=0, run_name="cnn")
        summary = train(cfg)
        run = home / "models" / summary["run"]
        copy = home / "models" / "cnn-copy"
        shutil.copytree(run, copy)
        clear_cache()
        yield SimpleNamespace(
            home=home,
            run=run,
            copy=copy,
            dataset=load_dataset("faces"),
            photo=_photo(assets),
        )
        clear_cache()


def _photo(assets: Path) -> np.ndarray:
    from facecore.data.images import load_rgb

    return load_rgb(assets / "detection" / GROUP_PHOTO)


class ForwardCounter:
    """Counts a module's forward calls and the batch size of each."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.batches: list[int] = []
        self.handle = module.register_forward_hook(
            lambda _m, inputs, _o: self.batches.append(inputs[0].shape[0])
        )

    def __enter__(self) -> ForwardCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


# --------------------------------------------------------------------------------------------
# Predicting on a photo


def test_group_photo_one_prediction_per_face_and_model(trained: SimpleNamespace) -> None:
    predictor = Predictor([trained.run, trained.copy], detector="yunet")
    a, b = predictor.models
    assert a is not b and a.run == "cnn" and b.run == "cnn-copy"
    detections = predictor.detect(trained.photo)
    assert len(detections) == 7
    with ForwardCounter(a.model) as ca, ForwardCounter(b.model) as cb:
        faces = predictor.predict(trained.photo)
    # every face of the photo goes through each model in one forward call
    assert ca.batches == [7] and cb.batches == [7]
    assert len(faces) == len(detections)
    classes = set(a.classes)
    for face, det in zip(faces, detections, strict=True):
        assert isinstance(face, FacePrediction)
        assert face.box == det.box and face.score == det.score and face.landmarks == det.landmarks
        assert face.nearest is None
        assert [p.run for p in face.predictions] == ["cnn", "cnn-copy"]
        for p in face.predictions:
            assert p.model == "custom_cnn"
            assert 0.0 <= p.confidence <= 1.0
            assert p.raw_label == p.top3[0][0] and p.raw_label in classes
            assert len(p.top3) == 3
            probs = [prob for _, prob in p.top3]
            assert probs == sorted(probs, reverse=True)
            if not p.unknown:
                assert p.confidence == pytest.approx(p.top3[0][1])
                assert p.label == p.raw_label
            else:
                assert p.label == UNKNOWN
            assert p.unknown == (p.raw_label == UNKNOWN or p.confidence < p.threshold)
        # the copy holds the same weights: the same answer
        first, second = face.predictions
        assert [c for c, _ in first.top3] == [c for c, _ in second.top3]
        assert [p for _, p in first.top3] == pytest.approx([p for _, p in second.top3], abs=1e-6)
    doc = json.loads(json.dumps([f.to_dict() for f in faces]))
    assert doc[0]["box"] == list(detections[0].box)
    assert set(doc[0]["predictions"][0]) == {
        "run",
        "model",
        "label",
        "raw_label",
        "confidence",
        "top3",
        "unknown",
        "threshold",
    }
    assert set(doc[0]["predictions"][0]["top3"][0]) == {"label", "prob"}


def test_same_run_twice_runs_once(trained: SimpleNamespace) -> None:
    predictor = Predictor([trained.run, "cnn"], detector="yunet")
    a, b = predictor.models
    assert a is b
    with ForwardCounter(a.model) as count:
        faces = predictor.predict(trained.photo)
    assert count.batches == [7]
    for face in faces:
        assert len(face.predictions) == 2
        assert face.predictions[0] == face.predictions[1]


def test_each_model_uses_its_own_threshold_unless_overridden(trained: SimpleNamespace) -> None:
    ckpt_threshold = torch.load(trained.run / "best.pt", weights_only=True)["threshold"]
    own = Predictor([trained.run], detector="yunet").predict(trained.photo)
    assert [p.threshold for f in own for p in f.predictions] == pytest.approx([ckpt_threshold] * len(own))

    strict = Predictor([trained.run], detector="yunet", threshold=1.01).predict(trained.photo)
    assert strict and all(p.label == UNKNOWN and p.unknown for f in strict for p in f.predictions)

    crops = decode_crops([p for p, _ in trained.dataset.items("test")])
    lax = Predictor([trained.run, trained.copy], detector="yunet", threshold=0)
    for faces in (lax.predict(trained.photo), lax.predict_crops(crops)):
        for p in (p for f in faces for p in f.predictions):
            assert p.threshold == 0
            assert p.unknown == (p.raw_label == UNKNOWN)
            assert p.label == p.raw_label


def test_no_face_gives_no_prediction(trained: SimpleNamespace) -> None:
    predictor = Predictor([trained.run], detector="yunet")
    with ForwardCounter(predictor.models[0].model) as count:
        assert predictor.predict(np.full((240, 320, 3), 128, np.uint8)) == []
        assert predictor.predict_crops(np.zeros((0, 256, 256, 3), np.uint8)) == []
    assert count.batches == []


def test_max_faces_keeps_the_best(trained: SimpleNamespace) -> None:
    predictor = Predictor([trained.run], detector="yunet", max_faces=3)
    faces = predictor.predict(trained.photo)
    best = Predictor([trained.run], detector="yunet").detect(trained.photo)[:3]
    assert [f.box for f in faces] == [d.box for d in best]


# --------------------------------------------------------------------------------------------
# Training evaluation and inference agree


def test_predict_crops_agrees_with_training_evaluate(trained: SimpleNamespace) -> None:
    items = trained.dataset.items("test")
    model, ckpt = load_model(trained.run)
    data = FaceCrops(items, eval_transform_from_dict(ckpt["preprocessing"]))
    loader = make_loader(data, batch_size=64, shuffle=False, workers=0, seed=0)
    ev = evaluate(model, loader, device=torch.device("cpu"), num_classes=len(ckpt["classes"]))

    predictor = Predictor([trained.run], detector="none", threshold=0)
    faces = predictor.predict_crops(decode_crops([p for p, _ in items]))
    assert len(faces) == len(items)
    raw = [f.predictions[0].raw_label for f in faces]
    assert raw == [ckpt["classes"][i] for i in ev["probs"].argmax(1)]
    conf = np.array([f.predictions[0].confidence for f in faces])
    np.testing.assert_allclose(conf, ev["probs"].max(1), atol=1e-5)
    probs, emb = predictor.models[0].classify(decode_crops([p for p, _ in items]))
    np.testing.assert_allclose(probs, ev["probs"], atol=1e-5)
    assert emb.shape == (len(items), 64 * 28 * 28)


# --------------------------------------------------------------------------------------------
# The model cache


def test_model_cache_same_object_until_the_file_changes(trained: SimpleNamespace, tmp_path: Path) -> None:
    first = load_run(trained.run)
    assert isinstance(first, LoadedModel)
    assert load_run(trained.run) is first
    assert load_run("cnn") is first
    assert load_run(trained.run / "best.pt") is first

    pt = tmp_path / "model.pt"
    shutil.copy(trained.run / "best.pt", pt)
    loaded = load_run(pt)
    assert loaded is not first and loaded is load_run(pt)
    st = pt.stat()
    os.utime(pt, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    reloaded = load_run(pt)
    assert reloaded is not loaded
    assert load_run(pt) is reloaded


def test_wrong_checkpoint_path_raises_checkpoint_error(trained: SimpleNamespace, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no-such-run"):
        load_run("no-such-run")
    with pytest.raises(CheckpointError):
        Predictor([tmp_path / "missing" / "best.pt"], detector="none")
    empty_run = tmp_path / "empty-run"
    empty_run.mkdir()
    with pytest.raises(CheckpointError):
        load_run(empty_run)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_run(junk)
    with pytest.raises(FacecoreError):
        Predictor([], detector="none")
    with pytest.raises(FacecoreError):
        Predictor([trained.run], detector="none", threshold=float("nan"))


# --------------------------------------------------------------------------------------------
# Nearest training images


def test_nearest_of_a_train_crop_is_itself_and_embeddings_are_cached(trained: SimpleNamespace) -> None:
    cache = trained.copy / EMBEDDINGS_FILE
    assert not cache.exists()
    path, label = trained.dataset.items("train")[3]
    crop = decode_crops([path])

    predictor = Predictor([trained.copy], detector="none")
    faces = predictor.predict_crops(crop, nearest=3)
    assert cache.is_file()
    nearest = faces[0].nearest
    assert nearest is not None and nearest[0]["run"] == "cnn-copy"
    images = nearest[0]["images"]
    assert len(images) == 3
    assert images[0]["file"] == str(path)
    assert images[0]["class"] == trained.dataset.classes[label]
    assert images[0]["similarity"] == pytest.approx(1.0, abs=1e-2)
    sims = [im["similarity"] for im in images]
    assert sims == sorted(sims, reverse=True)
    json.dumps(faces[0].to_dict())

    # the on-disk cache loads safely and is reused by a fresh load
    data = torch.load(cache, weights_only=True)
    train_files = [p.relative_to(trained.dataset.path).as_posix() for p, _ in trained.dataset.items("train")]
    assert data["files"] == train_files and data["embeddings"].shape[0] == len(train_files)
    mtime = cache.stat().st_mtime_ns
    clear_cache()
    loaded = load_run(trained.copy)
    index = loaded.nearest_images()
    assert not index.computed and cache.stat().st_mtime_ns == mtime
    assert loaded.nearest_images() is index  # and in memory
    _, emb = loaded.classify(crop)
    found = index.nearest(emb[0], k=1)
    assert found[0][0] == path and found[0][1] == trained.dataset.classes[label]

    # a changed dataset manifest rebuilds the in-memory index (same files: read back from disk)
    manifest = trained.dataset.path / "manifest.csv"
    st = manifest.stat()
    os.utime(manifest, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    rebuilt = loaded.nearest_images()
    assert rebuilt is not index and not rebuilt.computed

    # a newer checkpoint makes the cache stale
    best = trained.copy / "best.pt"
    st = best.stat()
    os.utime(best, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    fresh = load_run(trained.copy)
    assert fresh is not loaded
    assert fresh.nearest_images().computed
    assert cache.stat().st_mtime_ns != mtime


def test_stale_file_list_recomputes(trained: SimpleNamespace) -> None:
    loaded = load_run(trained.run)
    loaded.nearest_images()
    cache = trained.run / EMBEDDINGS_FILE
    data = torch.load(cache, weights_only=True)
    data["files"] = data["files"][:-1]
    data["embeddings"] = data["embeddings"][:-1]
    torch.save(data, cache)
    clear_cache()
    again = load_run(trained.run).nearest_images()
    assert again.computed and len(again) == len(trained.dataset.items("train"))


def test_predict_with_nearest_on_photo(trained: SimpleNamespace) -> None:
    faces = Predictor([trained.run, trained.copy], detector="yunet").predict(trained.photo, nearest=2)
    for face in faces:
        assert face.nearest is not None and [n["run"] for n in face.nearest] == ["cnn", "cnn-copy"]
        for n in face.nearest:
            assert len(n["images"]) == 2
            assert all(-1.0 <= im["similarity"] <= 1.0 + 1e-3 for im in n["images"])
            assert all(Path(im["file"]).is_file() for im in n["images"])


def test_embeddings_stay_right_while_other_threads_classify(
    trained: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """classify() hooks the head for embeddings; probabilities() runs the same model in other
    threads at the same time (live workers, other pages): their forwards must not leak in.

    Made deterministic: right after classify's hook sees its own batch, another thread runs the head.
    """
    import threading

    loaded = load_run(trained.run)
    crops = decode_crops([p for p, _ in trained.dataset.items("train")[:2]])
    alone_probs, alone_emb = loaded.classify(crops[:1])
    head, register = loaded._head, loaded._head.register_forward_hook
    me = threading.get_ident()

    def foreign(_m: torch.nn.Module, inputs: tuple, _out: torch.Tensor) -> None:
        if threading.get_ident() == me:  # another thread's forward, inside this one's window
            other = threading.Thread(target=lambda: head(torch.ones(3, inputs[0].shape[1])))
            other.start()
            other.join()

    def register_then_foreign(hook, *args, **kwargs):
        first, second = register(hook, *args, **kwargs), register(foreign)
        return SimpleNamespace(remove=lambda: (first.remove(), second.remove()))

    monkeypatch.setattr(head, "register_forward_hook", register_then_foreign)
    probs, emb = loaded.classify(crops[:1])
    assert emb.shape == alone_emb.shape and torch.allclose(emb, alone_emb, atol=1e-5)
    assert np.allclose(probs, alone_probs, atol=1e-6)
