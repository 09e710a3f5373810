"""Export: a trained run as ONNX (checked against PyTorch on real faces, loaded back for inference
by ``load_run``, ``predict`` and ``live``), and a gallery as an npz that plain numpy can use."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from facecore.data.dataset import load_dataset
from facecore.data.images import load_rgb
from facecore.errors import ExportedModelError, ExportMismatchError
from facecore.live.export import export_run
from facecore.live.inference import Predictor
from facecore.recognize.models import clear_cache, load_recognizer, load_run
from facecore.recognize.onnx import OnnxModel, exported_models
from tests.helpers import LFW, PHOTO, face_y4m, fc


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_faces(dataset: str = "faces") -> list[np.ndarray]:
    ds = load_dataset(dataset)
    return [load_rgb(p) for split in ("train", "val", "test") for p, _ in ds.items(split)]


def test_cli_export_writes_a_checked_onnx_and_json(trained_home: Path) -> None:
    out = fc("export", "tiny-cnn", "--format", "onnx", "--json", home=trained_home).stdout
    meta = json.loads(out)
    onnx_path = trained_home / "models" / "tiny-cnn" / "export" / "model.onnx"
    json_path = onnx_path.with_suffix(".json")
    assert meta["onnx_path"] == str(onnx_path) and meta["json_path"] == str(json_path)
    on_disk = json.loads(json_path.read_text())
    assert on_disk["sha256"] == sha256(onnx_path) == meta["sha256"]
    assert on_disk["bytes"] == onnx_path.stat().st_size
    ckpt = torch.load(trained_home / "models" / "tiny-cnn" / "best.pt", weights_only=True)
    assert on_disk["classes"] == list(ckpt["classes"]) and on_disk["model"] == "custom_cnn"
    prep = ckpt["preprocessing"]
    assert on_disk["input_size"] == prep["input_size"] and on_disk["resize_size"] == prep["resize_size"]
    assert on_disk["mean"] == pytest.approx(list(prep["mean"]))
    assert on_disk["std"] == pytest.approx(list(prep["std"]))
    assert on_disk["threshold"] == pytest.approx(float(ckpt["threshold"]))
    assert on_disk["score_kind"] == "probability"
    assert on_disk["open_set_score"] in ("max_softmax", "centroid_cosine")
    assert on_disk["margin"] == pytest.approx(0.25) and on_disk["opset"] == 17 and not on_disk["int8"]
    assert on_disk["source_run"] == "tiny-cnn" and on_disk["versions"]["facecore"]
    # checked on the real test split (4 classes x 1 face): same top-1 everywhere, logits ~equal
    check = on_disk["check"]
    assert check["source"] == "faces test split"
    assert check["crops"] == len(load_dataset("faces").items("test"))
    assert check["top1_equal"] and check["top1_agreement"] == 1.0 and check["max_abs_logit_diff"] < 1e-3
    # the batch axis is dynamic
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [o.name for o in graph.output] == ["logits", "embedding"]
    # the human-readable form says the figures; no temporary file is left beside the export
    text = fc("export", "tiny-cnn", home=trained_home).stdout
    assert "max abs logit difference" in text and "top-1 equal on all" in text
    assert sorted(p.name for p in onnx_path.parent.iterdir()) == ["model.json", "model.onnx"]


def test_the_onnx_model_predicts_as_the_checkpoint(trained_home: Path) -> None:
    clear_cache()
    meta = export_run("tiny-cnn")
    torch_model = load_run("tiny-cnn")
    onnx_model = load_run(meta["onnx_path"])
    assert isinstance(onnx_model, OnnxModel) and load_run(meta["json_path"]) is onnx_model
    assert load_recognizer("tiny-cnn/export/model.onnx") is onnx_model  # relative to the models folder
    assert onnx_model.classes == torch_model.classes and onnx_model.margin == torch_model.margin
    assert onnx_model.threshold == torch_model.threshold and onnx_model.score_kind == "probability"
    faces = all_faces()
    p_torch, e_torch = torch_model.classify(faces)
    p_onnx, e_onnx = onnx_model.classify(faces)
    assert np.abs(p_torch - p_onnx).max() < 1e-4
    assert torch.allclose(e_torch, e_onnx, atol=1e-3)
    labels = [p.label for p in torch_model.predictions(p_torch, None, e_torch)]
    assert [p.label for p in onnx_model.predictions(p_onnx, None, e_onnx)] == labels
    assert np.allclose(onnx_model.probabilities(faces), p_onnx)
    # the Predictor (photo upload, `predict`) takes it beside the checkpoint
    predictor = Predictor(["tiny-cnn", meta["onnx_path"]], detector="auto")
    found = predictor.predict(load_rgb(PHOTO))
    assert len(found) >= 5
    for face in found:
        a, b = face.predictions
        assert (a.label, a.raw_label) == (b.label, b.raw_label) and abs(a.confidence - b.confidence) < 1e-4
    assert found[0].predictions[1].run == "tiny-cnn · onnx"
    # the Live page lists it beside the run
    assert exported_models([trained_home / "models" / "tiny-cnn"]) == {meta["onnx_path"]: "tiny-cnn · onnx"}


def test_predict_and_live_commands_run_on_the_onnx_file(trained_home: Path, tmp_path: Path) -> None:
    fc("export", "tiny-cnn", home=trained_home)
    onnx_path = str(trained_home / "models" / "tiny-cnn" / "export" / "model.onnx")
    out = json.loads(fc("predict", str(PHOTO), "--model", onnx_path, "--json", home=trained_home).stdout)
    ref = json.loads(fc("predict", str(PHOTO), "--model", "tiny-cnn", "--json", home=trained_home).stdout)
    assert out["models"][0]["run"] == "tiny-cnn · onnx" and len(out["faces"]) == len(ref["faces"]) >= 5
    for a, b in zip(out["faces"], ref["faces"], strict=True):
        assert a["predictions"][0]["raw_label"] == b["predictions"][0]["raw_label"]
    person = tmp_path / "Colin_Powell"
    person.mkdir()
    for f in sorted((LFW / "Colin_Powell").glob("*.jpg"))[:4]:
        shutil.copy(f, person / f.name)
    video = face_y4m(tmp_path / "faces.y4m", person, fps=5, frames_per_image=1)
    summary = json.loads(
        fc("live", str(video), "--model", onnx_path, "--every-frame", "--json", home=trained_home).stdout
    )
    assert summary["stats"]["recognised"] == summary["stats"]["frames"] == 4, summary
    assert summary["seen"], summary


def test_a_corrupt_or_altered_onnx_file_is_refused_clearly(trained_home: Path) -> None:
    clear_cache()
    meta = export_run("tiny-cnn")
    onnx_path, json_path = Path(meta["onnx_path"]), Path(meta["json_path"])
    good = onnx_path.read_bytes()
    onnx_path.write_bytes(good[: len(good) // 2])  # truncated: no longer the file the JSON names
    with pytest.raises(ExportedModelError, match="sha256 differs"):
        load_run(onnx_path)
    proc = fc("predict", str(PHOTO), "--model", str(onnx_path), home=trained_home, check=False)
    assert proc.returncode == 2 and "sha256 differs" in proc.stderr and "Traceback" not in proc.stderr
    # a JSON that vouches for garbage: onnxruntime's refusal, named
    onnx_path.write_bytes(b"not an onnx model at all")
    json_path.write_text(json.dumps({**json.loads(json_path.read_text()), "sha256": sha256(onnx_path)}))
    with pytest.raises(ExportedModelError, match="onnxruntime cannot load it"):
        load_run(onnx_path)
    # an .onnx without its JSON
    stray = trained_home / "stray.onnx"
    stray.write_bytes(good)
    with pytest.raises(ExportedModelError, match="stray.json: missing"):
        load_run(stray)


def test_an_export_that_changes_answers_is_refused_and_leaves_nothing(
    trained_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facecore.models.onnx as onnx_mod

    real = onnx_mod.export_onnx

    def broken(model: torch.nn.Module, head: torch.nn.Module, size: int) -> bytes:
        with torch.no_grad():
            head.weight.copy_(head.weight.roll(1, dims=0))  # every class takes its neighbour's weights
            head.bias.copy_(head.bias.roll(1, dims=0))
        try:
            return real(model, head, size)
        finally:
            with torch.no_grad():
                head.weight.copy_(head.weight.roll(-1, dims=0))
                head.bias.copy_(head.bias.roll(-1, dims=0))

    clear_cache()
    monkeypatch.setattr(onnx_mod, "export_onnx", broken)
    folder = trained_home / "models" / "tiny-cnn" / "export"
    with pytest.raises(ExportMismatchError, match="changes the top-1 class.*Nothing was written"):
        export_run("tiny-cnn")
    assert not folder.exists() or list(folder.iterdir()) == []


def test_int8_export_reports_agreement_and_loads(trained_home: Path) -> None:
    clear_cache()
    meta = json.loads(fc("export", "tiny-cnn", "--int8", "--json", home=trained_home).stdout)
    assert meta["int8"] and meta["onnx_path"].endswith("export/model.int8.onnx")
    assert 0.0 <= meta["check"]["top1_agreement"] <= 1.0 and meta["check"]["max_abs_logit_diff"] >= 0
    model = load_run(meta["onnx_path"])
    assert model.run == "tiny-cnn · onnx int8"
    faces = all_faces()
    agree = np.mean(model.classify(faces)[0].argmax(1) == load_run("tiny-cnn").classify(faces)[0].argmax(1))
    assert agree >= 0.9, agree
    assert Path(meta["onnx_path"]).stat().st_size < 0.5 * (
        trained_home / "models" / "tiny-cnn" / "best.pt"
    ).stat().st_size


def test_resnet50_exports_exactly(fake_imagenet_weights: Path) -> None:
    """The ImageNet ResNet-50 (frozen BatchNorm, weights from a local state dict): one small batch."""
    from facecore.models.onnx import export_onnx
    from facecore.models.registry import classifier_head, create_model
    from facecore.recognize.onnx import _session

    model = create_model("resnet50_pretrained", num_classes=4).eval()
    data = export_onnx(model, classifier_head(model), 224)
    faces = [load_rgb(p) for p in sorted((LFW / "Colin_Powell").glob("*.jpg"))[:2]]
    from torchvision.transforms import v2

    tf = v2.Compose([v2.ToImage(), v2.Resize(224), v2.CenterCrop(224), v2.ToDtype(torch.float32, scale=True),
                     v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])  # fmt: skip
    x = torch.stack([tf(f.copy()) for f in faces])
    with torch.inference_mode():
        ref = model(x).numpy()
    logits, emb = _session(data).run(None, {"input": x.numpy()})
    assert emb.shape == (2, 2048) and np.abs(logits - ref).max() < 1e-3
    assert (logits.argmax(1) == ref.argmax(1)).all()


def test_gallery_export_is_read_back_with_numpy_alone(yunet_home: Path) -> None:
    from facecore.detect.detectors import create_detector
    from facecore.gallery.enroll import enroll_photos, face_of_photo
    from facecore.gallery.match import load_gallery_model

    people = ("Colin_Powell", "Tony_Blair", "Hugo_Chavez")
    for person in people:
        files = sorted((LFW / person).glob("*.jpg"))[:4]
        enroll_photos("team", person, [(f.name, f) for f in files], largest=True)
    meta = json.loads(fc("export", "gallery:team", "--json", home=yunet_home).stdout)
    npz, side = Path(meta["npz_path"]), Path(meta["json_path"])
    assert npz == yunet_home / "exports" / "gallery-team.npz" and side.with_suffix(".npz") == npz
    info = json.loads(side.read_text())
    assert info["sha256"] == sha256(npz) and info["embedder"] == "sface" and info["match"] == "max"
    assert info["people"] == {p: 4 for p in people} and info["calibrated"] is False
    # plain numpy: no facecore, no pickle
    with np.load(npz, allow_pickle=False) as data:
        emb, person = data["embeddings"], data["person"].tolist()
        assert emb.dtype == np.float32 and emb.shape == (12, info["dim"]) and len(data["files"]) == 12
    # queries: photos never enrolled, and strangers; embedded by the gallery's own embedder
    model = load_gallery_model("team")
    det = create_detector("auto")
    paths = [p for who in people for p in sorted((LFW / who).glob("*.jpg"))[4:7]]
    strangers = ("George_W_Bush", "Gerhard_Schroeder")
    paths += [p for who in strangers for p in sorted((LFW / who).glob("*.jpg"))[:3]]
    margin = info["margin"]
    crops = np.stack([face_of_photo(load_rgb(p), det, margin=margin, largest=True).crop for p in paths])
    scores, q = model.classify(crops)
    expected = [p.label for p in model.predictions(scores)]
    q = q.numpy() / np.linalg.norm(q.numpy(), axis=1, keepdims=True)
    sims = q @ emb.T
    names = sorted(set(person))
    best = np.stack([sims[:, [i for i, p in enumerate(person) if p == n]].max(axis=1) for n in names], axis=1)
    t = info["threshold"]
    decided = [names[i] if s >= t else "Unknown" for i, s in zip(best.argmax(1), best.max(1), strict=True)]
    assert decided == expected
    assert sum(d == p.parent.name for d, p in zip(decided[:9], paths[:9], strict=True)) >= 8


def test_a_run_deciding_unknown_by_centroid_cosine_keeps_its_rule(trained_home: Path) -> None:
    clear_cache()
    loaded = load_run("tiny-cnn")
    assert loaded.centroids is not None  # training stored the class centroids
    loaded.score_name = "centroid_cosine"  # as training picks it when it separates strangers best
    try:
        meta = export_run("tiny-cnn")
        assert meta["open_set_score"] == "centroid_cosine" and len(meta["centroids"]) == len(meta["classes"])
        onnx_model = load_run(meta["onnx_path"])
        assert onnx_model.needs_embeddings
        faces = all_faces()
        ours = onnx_model.predictions(*_probs_and_emb(onnx_model, faces))
        theirs = loaded.predictions(*_probs_and_emb(loaded, faces))
        assert [p.label for p in ours] == [p.label for p in theirs]
        assert np.allclose([p.confidence for p in ours], [p.confidence for p in theirs], atol=1e-4)
    finally:
        clear_cache()


def _probs_and_emb(model: Any, faces: list[np.ndarray]) -> tuple[np.ndarray, None, torch.Tensor]:
    probs, emb = model.classify(faces)
    return probs, None, emb
