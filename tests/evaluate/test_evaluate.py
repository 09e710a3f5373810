"""Evaluation and comparison of real runs: real LFW faces, real (tiny) training, real reports."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facecore.data.dataset import UNKNOWN, import_dataset, load_dataset
from facecore.data.loaders import FaceCrops, make_loader
from facecore.data.transforms import AugmentConfig, eval_transform_from_dict
from facecore.errors import CheckpointError, DatasetError, FacecoreError
from facecore.evaluate.compare import compare_runs
from facecore.evaluate.evaluation import evaluate_run, open_set_scores
from facecore.evaluate.locate import cached_evaluation
from facecore.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from facecore.recognize.openset import suggest_threshold, sweep
from facecore.train.config import TrainConfig
from facecore.train.epoch import evaluate
from facecore.train.loop import train
from tests.helpers import make_people_tree, yunet_workspace

PEOPLE = {"Colin_Powell": 8, "Tony_Blair": 8, "Hugo_Chavez": 8}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, assets: Path):
    """A workspace with the 3-people + Unknown dataset and two 1-epoch custom_cnn runs (seeds 0 and 1)."""
    root = tmp_path_factory.mktemp("evaluate")
    home = yunet_workspace(root / "home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACECORE_HOME", str(home))
        mp.delenv("FACECORE_YUNET", raising=False)
        # half of the faces train, a quarter test: 16 / 8 / 8 images, 2 test faces per class
        import_dataset(make_people_tree(root / "src", PEOPLE, unknown=8), "faces", ratios=(0.5, 0.25, 0.25))
        names = []
        for seed in (0, 1):
            cfg = TrainConfig.for_model(
                "custom_cnn",
                "faces",
                epochs=1,
                batch_size=8,
                seed=seed,
                workers=0,
                run_name=f"cnn-s{seed}",
                augment=AugmentConfig.none(),
            )
            names.append(train(cfg)["run"])
        yield {"home": home, "names": names, "dirs": [home / "models" / n for n in names]}


def _predictions(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_evaluate_run_metrics_and_predictions(runs) -> None:
    run_dir = runs["dirs"][0]
    r = evaluate_run(runs["names"][0])  # by name, under FACECORE_HOME/models
    test_items = load_dataset("faces").items("test")
    n = len(test_items)
    assert r.n_images == n and r.split == "test" and r.dataset == "faces"
    assert r.classes == sorted([*PEOPLE, UNKNOWN])

    cm = np.array(r.confusion_matrix)
    assert cm.shape == (4, 4) and cm.sum() == n
    assert np.trace(cm) / cm.sum() == pytest.approx(r.accuracy)
    assert cm.sum(axis=1).tolist() == [r.per_class[c]["support"] for c in r.classes]
    assert 0 <= r.weighted_f1 <= 1 and 0 <= r.macro_f1 <= 1

    rows = _predictions(r.predictions_csv)
    assert Path(r.predictions_csv) == run_dir / "eval_test" / "predictions.csv"
    assert [row["file"] for row in rows] == [
        p.relative_to(load_dataset("faces").path).as_posix() for p, _ in test_items
    ]
    for row in rows:
        probs = [float(row[f"top{k}_prob"]) for k in (1, 2, 3)]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-5
        assert row["pred"] == row["top1_label"] and float(row["confidence"]) == probs[0]
        assert row["correct"] == str(int(row["true"] == row["pred"]))
        accepted = probs[0] >= r.open_set.threshold_in_model and row["pred"] != UNKNOWN
        assert row["accepted_at_threshold"] == str(int(accepted))
    assert np.mean([row["correct"] == "1" for row in rows]) == pytest.approx(r.accuracy)
    assert len(r.misclassified) == n - np.trace(cm)

    # the same numbers as the training loop's own evaluate() on the same images
    model, ckpt = load_model(run_dir / "best.pt")
    data = FaceCrops(test_items, eval_transform_from_dict(ckpt["preprocessing"]))
    ref = evaluate(
        model,
        make_loader(data, batch_size=4, shuffle=False, workers=0, seed=0),
        device=torch.device("cpu"),
        num_classes=4,
    )
    assert ref["accuracy"] == pytest.approx(r.accuracy)
    assert [r.classes[i] for i in ref["probs"].argmax(1)] == [row["pred"] for row in rows]
    assert ref["loss"] == pytest.approx(r.loss, rel=1e-4)

    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("params_total", "params_trainable", "train_seconds"):
        assert getattr(r, key) == summary[key]
    assert r.checkpoint_bytes == (run_dir / "best.pt").stat().st_size
    assert set(r.latency_ms) == {"batch1", "batch32"} and all(v > 0 for v in r.latency_ms.values())
    assert json.loads((run_dir / "eval_test" / "metrics.json").read_text()) == r.to_dict()
    assert cached_evaluation(run_dir) == r


@pytest.mark.slow
def test_open_set_sweep_on_test_split(runs) -> None:
    r = evaluate_run(runs["dirs"][1], latency=False)
    op = r.open_set
    rows = op.sweep
    ckpt = load_checkpoint(runs["dirs"][1] / "best.pt")
    assert op.score == ckpt["open_set_score"] and len(rows) == 101
    assert rows[0]["threshold"] == 0.0 and rows[-1]["threshold"] == 1.0
    far = [row["false_accept_rate"] for row in rows]
    known = [row["known_accuracy"] for row in rows]
    assert all(a >= b for a, b in zip(far, far[1:], strict=False))
    assert all(a >= b for a, b in zip(known, known[1:], strict=False))

    preds = _predictions(r.predictions_csv)
    unknown = [p for p in preds if p["true"] == UNKNOWN]
    assert unknown, "the test split needs Unknown faces"
    assert far[0] == pytest.approx(sum(p["pred"] != UNKNOWN for p in unknown) / len(unknown))
    known_rows = [p for p in preds if p["true"] != UNKNOWN]
    assert known[0] == pytest.approx(np.mean([p["pred"] == p["true"] for p in known_rows]))

    ckpt = load_checkpoint(runs["dirs"][1] / "best.pt")
    assert op.threshold_in_model == ckpt["threshold"]
    assert op.at_model_threshold["threshold"] == pytest.approx(ckpt["threshold"], abs=0.005)
    assert op.suggested == suggest_threshold(rows, ckpt["config"]["target_far"])
    again = evaluate_run(runs["dirs"][1], latency=False, target_far=0.5)
    assert again.open_set.suggested == suggest_threshold(rows, 0.5)
    assert set(op.scores) == {"max_softmax", "max_logit", "energy", "centroid_cosine"}


def test_suggest_threshold_on_hand_built_probs() -> None:
    # classes A, B, Unknown. Known faces: confidences 0.9 (right), 0.7 (right), 0.6 (wrong).
    # Unknown faces accepted while the threshold is <= 0.555, 0.405 and 0.455; one predicted Unknown.
    probs = np.array(
        [
            [0.90, 0.05, 0.05],
            [0.20, 0.70, 0.10],
            [0.30, 0.60, 0.10],
            [0.555, 0.245, 0.20],
            [0.405, 0.345, 0.25],
            [0.30, 0.455, 0.245],
            [0.10, 0.20, 0.70],
        ]
    )
    labels = np.array([0, 1, 0, 2, 2, 2, 2])
    rows = sweep(probs, labels, unknown_index=2)
    by_t = {round(row["threshold"], 2): row for row in rows}
    assert [by_t[t]["false_accept_rate"] for t in (0.0, 0.40, 0.41, 0.45, 0.46, 0.55, 0.56, 1.0)] == [
        0.75,
        0.75,
        0.5,
        0.5,
        0.25,
        0.25,
        0.0,
        0.0,
    ]
    assert by_t[0.6]["known_accuracy"] == pytest.approx(2 / 3) and by_t[0.6]["known_accepted"] == 1.0
    assert by_t[0.61]["known_accepted"] == pytest.approx(2 / 3)
    assert by_t[0.71]["known_accuracy"] == pytest.approx(1 / 3)

    s = suggest_threshold(rows, 0.3)
    assert (s["threshold"], s["false_accept_rate"], s["unknown_rejected"]) == (0.46, 0.25, 0.75)
    assert s["known_accuracy"] == pytest.approx(2 / 3) and s["calibrated"] is True
    assert suggest_threshold(rows, 0.0)["threshold"] == 0.56
    assert suggest_threshold(rows, 0.6)["threshold"] == 0.41
    assert suggest_threshold(rows, 0.75)["threshold"] == 0.0

    # an Unknown face with confidence 1.0 is accepted at every threshold: the target cannot be met
    sure = sweep(np.vstack([probs, [1.0, 0.0, 0.0]]), np.append(labels, 2), unknown_index=2)
    worst = suggest_threshold(sure, 0.1)
    # meeting it (threshold 1.0) would name no known face: the balanced threshold is used instead
    assert worst["target_threshold"] == 1.0 and worst["threshold"] == 0.56
    assert worst["false_accept_rate"] == 0.2 and worst["known_accuracy"] == pytest.approx(2 / 3)
    assert "best balances known accuracy against false accepts is used" in worst["reason"]
    none = suggest_threshold(sweep(probs[:3], labels[:3], unknown_index=2), 0.01)
    assert none["threshold"] == 0.5 and none["calibrated"] is False

    # every known face outscores every Unknown one here, whatever the score
    scores = open_set_scores(np.log(probs), labels, 2)
    assert scores["max_softmax"] == {"auroc": 1.0, "far_at_95_known": 0.0}
    assert scores["max_logit"]["auroc"] == 1.0


def test_a_copied_workspace_keeps_its_evaluations(
    runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evaluations stay valid in a workspace copied elsewhere (times kept), with paths there."""
    name = runs["names"][1]
    r = evaluate_run(runs["dirs"][1], latency=False)
    moved = tmp_path / "elsewhere"
    shutil.copytree(runs["home"], moved)  # copy2: file times kept, as cp -a or rsync -a
    monkeypatch.setenv("FACECORE_HOME", str(moved))
    got = cached_evaluation(name, need_latency=False)
    assert got is not None and got.accuracy == r.accuracy
    assert got.checkpoint == str((moved / "models" / name / "best.pt").resolve())
    assert got.dataset_path == str((moved / "datasets" / "faces").resolve())
    for key in ("predictions_csv", "metrics_json", "run_dir"):
        path = Path(getattr(got, key))
        assert path.exists() and path.is_relative_to(moved.resolve()), key
    assert _predictions(got.predictions_csv) == _predictions(r.predictions_csv)
    # a different checkpoint file under the same name is not the evaluated one
    best = moved / "models" / name / "best.pt"
    stamp = best.stat()
    best.write_bytes(best.read_bytes() + b"\0")
    os.utime(best, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert cached_evaluation(name, need_latency=False) is None


@pytest.mark.slow
def test_save_threshold_writes_both_checkpoints(runs, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(runs["dirs"][0], copy)
    shutil.rmtree(copy / "eval_test", ignore_errors=True)
    r = evaluate_run(copy, target_far=0.0, save_threshold=True, latency=False)
    want = r.open_set.suggested["threshold"]
    assert want == suggest_threshold(r.open_set.sweep, 0.0)["threshold"]
    assert r.threshold_saved["threshold"] == want
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(copy / name)
        assert ckpt["threshold"] == want
        assert ckpt["threshold_info"]["split"] == "test" and ckpt["threshold_info"]["source"] == "evaluate"
    assert cached_evaluation(copy) is None  # the checkpoint changed after metrics.json was written
    assert evaluate_run(copy, latency=False).open_set.threshold_in_model == want
    # the original run keeps its validation-calibrated threshold
    assert load_checkpoint(runs["dirs"][0] / "best.pt")["threshold_info"].get("source") is None


@pytest.mark.slow
def test_compare_runs_writes_reports(runs, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = compare_runs(runs["names"], out=out, latency=False)
    md = (out / "report.md").read_text()
    for name in runs["names"]:
        assert name in md
    assert "| model | run | accuracy | macro F1 | weighted F1 |" in md
    assert "## Per-class F1" in md

    page = (out / "report.html").read_text()
    assert "plotly" in page.lower() and "<img" in page and "data:image/jpeg;base64," in page
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?(https?:)?//", page, re.I)
    assert page.count("Plotly.newPlot") == 5  # bars, curves, 2 confusion matrices, open set
    assert len(result["disagreements"]) + len(result["all_wrong"]) > 0

    data = json.loads((out / "comparison.json").read_text())
    assert [row["label"] for row in data["runs"]] == runs["names"]
    n = data["n_images"]
    for row, name in zip(data["runs"], runs["names"], strict=True):
        assert (
            row["accuracy"]
            == json.loads(
                (runs["dirs"][runs["names"].index(name)] / "eval_test" / "metrics.json").read_text()
            )["accuracy"]
        )
    for d in data["disagreements"]:
        assert len({p["pred"] for p in d["predictions"].values()}) == 2
    assert all(sum(map(sum, cm)) == n for cm in data["confusion_matrices"].values())

    again = compare_runs(runs["names"], out=out, latency=False)
    assert all(again["reused_evaluation"].values())


@pytest.mark.slow
def test_compare_refuses_mismatched_runs(runs, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(runs["dirs"][1], other)
    ckpt = load_checkpoint(other / "best.pt")
    ckpt["dataset"] = {"name": "elsewhere", "split_seed": 0}
    save_checkpoint(other / "best.pt", {k: v for k, v in ckpt.items() if k not in ("format", "versions")})
    with pytest.raises(FacecoreError, match=r"dataset differs.*cnn-s0: faces.*other: elsewhere"):
        compare_runs([runs["names"][0], other], out=tmp_path / "x")
    ckpt["dataset"] = {"name": "faces", "split_seed": 7}
    save_checkpoint(other / "best.pt", {k: v for k, v in ckpt.items() if k not in ("format", "versions")})
    with pytest.raises(FacecoreError, match="split seed differs"):
        compare_runs([runs["names"][0], other], out=tmp_path / "x")
    with pytest.raises(FacecoreError, match="1 to 6 runs"):
        compare_runs([], out=tmp_path / "x")
    with pytest.raises(FacecoreError, match="1 to 6 runs"):
        compare_runs([runs["names"][0]] * 7, out=tmp_path / "x")
    with pytest.raises(FacecoreError, match="same checkpoint"):
        compare_runs([runs["names"][0], runs["dirs"][0]], out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_evaluate_refuses_bad_checkpoints_and_datasets(runs, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a loadable facecore checkpoint"):
        evaluate_run(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a facecore checkpoint"):
        evaluate_run(foreign)
    with pytest.raises(CheckpointError, match="No run or checkpoint 'no-such-run'"):
        evaluate_run("no-such-run")

    ckpt = load_checkpoint(runs["dirs"][0] / "best.pt")
    payload = {k: v for k, v in ckpt.items() if k not in ("format", "versions")}
    save_checkpoint(tmp_path / "two.pt", {**payload, "classes": ckpt["classes"][:2]})
    with pytest.raises(CheckpointError, match="do not fit a custom_cnn with 2 classes"):
        evaluate_run(tmp_path / "two.pt")
    save_checkpoint(tmp_path / "gone.pt", {**payload, "dataset": {"name": "gone", "split_seed": 0}})
    with pytest.raises(DatasetError, match="trained on dataset 'gone', which is not in this workspace"):
        evaluate_run(tmp_path / "gone.pt")
    save_checkpoint(tmp_path / "renamed.pt", {**payload, "classes": list(reversed(ckpt["classes"]))})
    with pytest.raises(DatasetError, match="classes are now"):
        evaluate_run(tmp_path / "renamed.pt")
    with pytest.raises(FacecoreError, match="Unknown split"):
        evaluate_run(runs["dirs"][0], split="holdout")
