"""A trained run, its ONNX export and a gallery all implement the one Recognizer protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from facecore.live.export import export_run
from facecore.recognize.models import load_recognizer
from facecore.recognize.protocol import COSINE_SCALE, PROBABILITY_SCALE, Recognizer
from tests.helpers import LFW, enroll_team


def _crop(person: str, size: int = 224) -> np.ndarray:
    photo = sorted((LFW / person).glob("*.jpg"))[0]
    return np.asarray(Image.open(photo).convert("RGB").resize((size, size)))


def test_runs_exports_and_galleries_are_recognizers(trained_home: Path) -> None:
    export = export_run("tiny-cnn")
    enroll_team()
    loaded = {
        "run": load_recognizer("tiny-cnn", device="cpu"),
        "onnx": load_recognizer(export["onnx_path"]),
        "gallery": load_recognizer("gallery:team"),
    }
    crops = np.stack([_crop("Colin_Powell"), _crop("Tony_Blair")])
    for kind, model in loaded.items():
        assert isinstance(model, Recognizer), kind
        # its reference loads it again
        again = load_recognizer(str(model.ref))
        assert type(again) is type(model) and again.classes == model.classes, kind
        scores, _emb = model.classify(crops)
        assert scores.shape == (2, len(model.classes)), kind
        preds = model.predictions(scores)
        assert len(preds) == 2 and all(p.run == model.run for p in preds), kind
        scale = model.threshold_scale
        assert scale.low <= model.threshold <= scale.high, kind
    run, onnx, gallery = loaded["run"], loaded["onnx"], loaded["gallery"]
    assert run.threshold_scale is PROBABILITY_SCALE and onnx.threshold_scale is PROBABILITY_SCALE
    assert gallery.threshold_scale is COSINE_SCALE
    assert run.ref.is_run and onnx.ref.is_run and gallery.ref.is_gallery
    assert run.describe() == "custom_cnn run tiny-cnn: 4 classes, trained on faces"
    assert onnx.describe() == "custom_cnn exported to ONNX (onnx float32): 4 classes, from run tiny-cnn"
    assert gallery.describe().startswith("gallery:team: 2 people, 10 faces, ")
    # a gallery names the person it knows; the same photo under a threshold above 1 is Unknown
    scores = gallery.classify(crops)[0]
    assert [p.label for p in gallery.predictions(scores)] == ["Colin_Powell", "Tony_Blair"]
    assert [p.label for p in gallery.predictions(scores, threshold=1.01)] == ["Unknown"] * 2
    assert COSINE_SCALE.clamp(2.0) == 1.0 and PROBABILITY_SCALE.clamp(-0.5) == 0.0
