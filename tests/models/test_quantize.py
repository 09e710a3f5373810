"""Int8 copies for CPU inference: same answers as the float model on real faces, and the live
recognizer falls back to float (saying why) when a model cannot be converted."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facecore.data.dataset import load_dataset
from facecore.data.images import load_rgb
from facecore.errors import FacecoreError
from facecore.live.config import LiveConfig
from facecore.live.recognizer import LiveRecognizer
from facecore.models.quantize import quantize_int8
from facecore.models.registry import create_model
from facecore.recognize.models import clear_cache, load_run


def test_int8_gives_the_float_answer_on_real_faces(trained_home: Path) -> None:
    clear_cache()
    loaded = load_run("tiny-cnn")
    ds = load_dataset("faces")
    crops = [load_rgb(p) for split in ("train", "val", "test") for p, _ in ds.items(split)]
    fp = loaded.probabilities(crops)
    q = loaded.probabilities(crops, int8=True)
    assert q.shape == fp.shape and np.allclose(q.sum(axis=1), 1.0, atol=1e-4)
    agree = float(np.mean(fp.argmax(1) == q.argmax(1)))
    assert agree >= 0.9, agree
    assert np.abs(fp - q).max() < 0.25
    assert loaded.int8_model() is loaded.int8_model()  # built once
    print(f"\nint8 vs float top-1 agreement on {len(crops)} faces: {agree:.3f}")


def test_resnet50_converts_to_int8() -> None:
    torch.manual_seed(0)
    model = create_model("resnet50_scratch", num_classes=4, pretrained=False).eval()
    q = quantize_int8(model, [torch.randn(2, 3, 224, 224)])
    kinds = {type(m).__module__.split(".")[-2] for m in q.modules() if "quantized" in type(m).__module__}
    assert kinds, "no quantized modules"
    with torch.inference_mode():
        out = q(torch.randn(3, 3, 224, 224))
    assert out.shape == (3, 4) and torch.isfinite(out).all()


def test_live_int8_agrees_with_float_and_falls_back_when_it_cannot(
    trained_home: Path, trained_template: Path
) -> None:
    clear_cache()
    photos = [
        load_rgb(p) for p in sorted((trained_template.parent / "src" / "Colin_Powell").glob("*.jpg"))[:4]
    ]
    with (
        LiveRecognizer(["tiny-cnn"], LiveConfig(threshold=0.0)) as fp,
        LiveRecognizer(["tiny-cnn"], LiveConfig(precision="int8", threshold=0.0)) as q,
    ):
        assert q.int8 == {"custom_cnn": True} and q.int8_problems == {} and fp.int8 == {"custom_cnn": False}
        assert q.precision == {"custom_cnn": "int8"} and fp.precision == {"custom_cnn": "float32"}
        labels = [[r.recognize(p).faces[0].predictions[0].label for p in photos] for r in (fp, q)]
    assert sum(a == b for a, b in zip(*labels, strict=True)) >= 3, labels

    shutil.rmtree(trained_home / "datasets" / "faces")  # nothing left to calibrate on
    clear_cache()
    for precision in ("int8", "auto"):
        with LiveRecognizer(["tiny-cnn"], LiveConfig(precision=precision)) as rec:
            assert rec.precision == {"custom_cnn": "float32"} and rec.precision_ms == {}
            assert "calibrates on the run's training faces" in rec.int8_problems["custom_cnn"]
            assert rec.recognize(photos[0]).faces  # still recognising, in float
    with pytest.raises(FacecoreError, match="calibrates on the run's training faces"):
        load_run("tiny-cnn").int8_model()


def test_auto_precision_times_both_and_picks_the_faster(trained_home: Path) -> None:
    """``auto`` times float32 and int8 on this machine and classifies with the faster one."""
    clear_cache()
    with LiveRecognizer(["tiny-cnn"], LiveConfig(precision="auto")) as rec:
        ms = rec.precision_ms["custom_cnn"]
        assert set(ms) == {"float32", "int8"} and all(v > 0 for v in ms.values())
        faster = min(ms, key=ms.get)
        assert rec.precision == {"custom_cnn": faster}
        assert rec.int8 == {"custom_cnn": faster == "int8"} and rec.int8_problems == {}
        print(f"\nauto precision: {ms} -> {faster}")
    with pytest.raises(FacecoreError, match="Precision must be one of auto, float32, int8"):
        LiveRecognizer(["tiny-cnn"], LiveConfig(precision="fp16"))
