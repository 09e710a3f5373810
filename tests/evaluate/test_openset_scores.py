"""Unknown scores for trained runs: the centroid cosine beside max softmax, max logit and energy,
and the one that separates Unknown faces better on validation chosen for the stored threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facecore.data.dataset import load_dataset
from facecore.data.loaders import decode_crops
from facecore.evaluate.evaluation import evaluate_run
from facecore.live.config import LiveConfig
from facecore.live.inference import Predictor
from facecore.live.recognizer import LiveRecognizer
from facecore.models.checkpoint import load_checkpoint, save_checkpoint
from facecore.recognize.models import clear_cache, load_run
from facecore.recognize.openset import (
    centroid_cosine,
    choose_score,
    class_centroids,
    sweep,
    sweep_scores,
    unknown_scores,
)


def test_centroids_and_their_cosine_by_hand() -> None:
    emb = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [4.0, 0.0]])
    labels = np.array([0, 1, 1, 0])
    cents = class_centroids(emb, labels, 3)
    s = 1 / np.sqrt(2)
    b = np.array([s / 2, 0.5 + s / 2])  # mean of (0, 1) and (s, s), then unit length
    assert np.allclose(cents[0], [1, 0]) and np.allclose(cents[1], b / np.linalg.norm(b))
    assert np.allclose(cents[2], 0)  # a class with no faces
    cos = centroid_cosine(np.array([[1.0, 1.0], [0.0, 5.0]]), np.array([0, 0]), cents)
    assert np.allclose(cos, [s, 0.0])


def test_sweep_on_any_score_matches_the_softmax_sweep() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(40, 4))
    labels = rng.integers(0, 4, 40)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert sweep(probs, labels, 3) == sweep_scores(probs.max(1), probs.argmax(1), labels, 3)
    scores = unknown_scores(logits, rng.normal(size=(40, 5)), rng.normal(size=(4, 5)))
    assert set(scores) == {"max_softmax", "max_logit", "energy", "centroid_cosine"}


def test_choose_score_takes_the_better_auroc_of_the_two_with_a_0_to_1_scale() -> None:
    assert (
        choose_score({"max_softmax": {"auroc": 0.6}, "centroid_cosine": {"auroc": 0.8}}) == "centroid_cosine"
    )
    assert choose_score({"max_softmax": {"auroc": 0.8}, "centroid_cosine": {"auroc": 0.8}}) == "max_softmax"
    # energy separates best here, but has no fixed scale for a threshold: reported, not chosen
    assert choose_score({"max_softmax": {"auroc": 0.6}, "energy": {"auroc": 0.99}}) == "max_softmax"
    assert choose_score({}) == "max_softmax"


def test_training_reports_each_score_and_stores_the_better_one(trained_home: Path) -> None:
    run = trained_home / "models" / "tiny-cnn"
    summary = json.loads((run / "summary.json").read_text())
    auroc = summary["open_set"]["auroc"]
    assert set(auroc) == {"max_softmax", "max_logit", "energy", "centroid_cosine"}
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["open_set_score"] == summary["open_set"]["score"] == choose_score(auroc)
    assert ckpt["threshold_info"]["score"] == ckpt["open_set_score"]
    cents = ckpt["centroids"].float()
    assert cents.shape == (len(ckpt["classes"]), 64 * 28 * 28)
    assert torch.allclose(cents.norm(dim=1), torch.ones(len(cents)), atol=1e-2)
    # the stored centroids are those of the training faces' embeddings
    loaded = load_run(run)
    ds = load_dataset("faces")
    items = ds.items("train")
    _, emb = loaded.classify(decode_crops([p for p, _ in items]))
    want = class_centroids(emb.numpy(), np.array([i for _, i in items]), len(ds.classes))
    assert np.allclose(cents.numpy(), want, atol=1e-2)


def _force_centroid(run: Path) -> None:
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(run / name)
        ckpt["open_set_score"] = "centroid_cosine"
        ckpt["threshold"] = 0.3
        save_checkpoint(run / name, {k: v for k, v in ckpt.items() if k not in ("format", "versions")})
    clear_cache()


def test_a_run_that_decides_by_centroid_cosine_everywhere_it_recognises(trained_home: Path) -> None:
    run = trained_home / "models" / "tiny-cnn"
    _force_centroid(run)
    loaded = load_run(run)
    assert loaded.needs_embeddings
    ds = load_dataset("faces")
    crops = decode_crops([p for p, _ in ds.items("test")])
    probs, emb = loaded.classify(crops)
    preds = loaded.predictions(probs, None, emb)
    cos = centroid_cosine(emb.numpy(), probs.argmax(1), loaded.centroids.numpy())
    assert [p.confidence for p in preds] == pytest.approx(cos.tolist(), abs=1e-5)
    assert [p.unknown for p in preds] == [
        bool(c < 0.3) or p.raw_label == "Unknown" for c, p in zip(cos, preds, strict=True)
    ]
    with pytest.raises(ValueError, match="pass the embeddings"):
        loaded.predictions(probs)
    faces = Predictor([run]).predict_crops(crops)
    assert [f.predictions[0].confidence for f in faces] == pytest.approx(cos.tolist(), abs=1e-5)
    # int8 gives no embedding: float32 kept
    with LiveRecognizer([loaded], LiveConfig(precision="int8")) as live:
        assert live.precision["custom_cnn"] == "float32" and "centroids" in live.int8_problems["custom_cnn"]
        result, _ = live.recognize_image(np.ascontiguousarray(crops[0]))
    r = evaluate_run(run, latency=False)
    assert r.open_set.score == "centroid_cosine"
    accepted = [row["accepted_at_threshold"] for row in _csv(r.predictions_csv)]
    assert accepted == [
        str(int(c >= 0.3 and p.raw_label != "Unknown")) for c, p in zip(cos, preds, strict=True)
    ]


def _csv(path: str) -> list[dict[str, str]]:
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
