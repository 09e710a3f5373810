"""Training engine: config defaults, metrics files, checkpoints, resume, determinism, cached features."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import pytest
import torch

from facecore.data.transforms import AugmentConfig
from facecore.errors import CheckpointError, FacecoreError, TrainingStopped
from facecore.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from facecore.recognize.runs import read_metrics
from facecore.train.callbacks import METRIC_FIELDS
from facecore.train.config import TrainConfig
from facecore.train.loop import Trainer, train
from tests.helpers import ROOT


def quick(model: str, dataset: str, **kw) -> TrainConfig:
    return TrainConfig.for_model(model, dataset, **{"epochs": 2, "batch_size": 8, **kw})


def test_config_defaults_per_model() -> None:
    cnn = TrainConfig.for_model("custom_cnn", "d")
    scratch = TrainConfig.for_model("resnet50_scratch", "d")
    pre = TrainConfig.for_model("resnet50_pretrained", "d")
    assert (cnn.epochs, cnn.lr, cnn.optimizer, cnn.batch_size) == (10, 3e-4, "adam", 32)
    assert (scratch.epochs, scratch.lr) == (5, 1e-3)
    assert (pre.epochs, pre.lr) == (5, 3e-4)
    assert pre.augment == AugmentConfig.none() and scratch.augment == AugmentConfig()
    assert cnn.monitor == "val_f1" and cnn.target_far == 0.01 and cnn.seed == 0
    assert TrainConfig.for_model("custom_cnn", "d", lr=None, epochs=3).epochs == 3
    again = TrainConfig.from_dict(cnn.to_dict())
    assert again == cnn


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("epochs", 0, "epochs"),
        ("lr", -1.0, "lr"),
        ("optimizer", "lbfgs", "optimizer"),
        ("schedule", "wild", "schedule"),
        ("trainable_from", "layer9", "trainable_from"),
    ],
)
def test_config_rejects_bad_values(field: str, value, message: str) -> None:
    with pytest.raises(FacecoreError, match=message):
        TrainConfig.for_model("resnet50_pretrained", "d", **{field: value})
    with pytest.raises(FacecoreError, match="Unknown model"):
        TrainConfig.for_model("vgg99", "d")


def test_training_writes_metrics_and_checkpoints(small_dataset: str, home: Path) -> None:
    summary = train(quick("custom_cnn", small_dataset, schedule="cosine"))
    run = home / "models" / summary["run"]
    rows = read_metrics(run)
    assert [r["epoch"] for r in rows] == [1, 2]
    with (run / "metrics.csv").open() as fh:
        assert next(csv.reader(fh)) == METRIC_FIELDS
    assert all(0 <= r["val_acc"] <= 1 and r["images_per_s"] > 0 and r["epoch_seconds"] > 0 for r in rows)
    assert rows[1]["lr"] < rows[0]["lr"]  # the cosine schedule moved
    with (run / "per_class_f1.csv").open() as fh:
        assert next(csv.reader(fh)) == ["epoch", "Colin_Powell", "Hugo_Chavez", "Tony_Blair", "Unknown"]

    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["classes"] == ["Colin_Powell", "Hugo_Chavez", "Tony_Blair", "Unknown"]
    assert ckpt["preprocessing"]["input_size"] == 224 and len(ckpt["preprocessing"]["mean"]) == 3
    assert ckpt["config"]["model"] == "custom_cnn" and ckpt["config"]["schedule"] == "cosine"
    assert set(ckpt["versions"]) == {"torch", "torchvision", "facecore"}
    assert 0 <= ckpt["threshold"] <= 1 and ckpt["threshold_info"]["calibrated"] is True
    assert "val_loss" in ckpt["metrics"] and ckpt["epoch"] == summary["best_epoch"]
    assert "optimizer" in load_checkpoint(run / "last.pt") and "optimizer" not in ckpt

    # The checkpoint alone rebuilds the model: same outputs as the trained weights.
    model, _ = load_model(run / "best.pt")
    x = torch.rand(2, 3, 224, 224)
    reference = Trainer(quick("custom_cnn", small_dataset), run_dir=home / "scratch")
    reference._build()
    reference.model.load_state_dict(ckpt["state_dict"])
    reference.model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), reference.model(x), atol=1e-6)


def test_same_seed_same_metrics_on_cpu(small_dataset: str, home: Path) -> None:
    a = read_metrics(home / "models" / train(quick("custom_cnn", small_dataset, run_name="a"))["run"])
    b = read_metrics(home / "models" / train(quick("custom_cnn", small_dataset, run_name="b"))["run"])
    c = read_metrics(home / "models" / train(quick("custom_cnn", small_dataset, run_name="c", seed=1))["run"])
    keys = ["train_loss", "train_acc", "val_loss", "val_acc", "val_f1"]
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
    assert [r["train_loss"] for r in a] != [r["train_loss"] for r in c]


def test_stop_then_resume_equals_uninterrupted(small_dataset: str, home: Path) -> None:
    full = read_metrics(
        home / "models" / train(quick("custom_cnn", small_dataset, epochs=3, run_name="full"))["run"]
    )

    cfg = quick("custom_cnn", small_dataset, epochs=3, run_name="cut")
    calls = {"n": 0}

    def stop_in_epoch_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 5  # 3 batches an epoch (+1 check before each): stops inside epoch 2

    trainer = Trainer(cfg, should_stop=stop_in_epoch_two)
    with pytest.raises(TrainingStopped, match="kept epoch 1"):
        trainer.fit()
    run = trainer.run_dir
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert [r["epoch"] for r in read_metrics(run)] == [1]

    Trainer(cfg, run_dir=run).fit(resume=True)
    resumed = read_metrics(run)
    keys = ["train_loss", "val_loss", "val_acc"]
    assert [[r[k] for k in keys] for r in resumed] == [[r[k] for k in keys] for r in full]


def test_checkpoint_write_is_atomic(small_dataset: str, home: Path, monkeypatch) -> None:
    summary = train(quick("custom_cnn", small_dataset, epochs=1))
    best = home / "models" / summary["run"] / "best.pt"
    before = best.read_bytes()
    ckpt = load_checkpoint(best)

    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("facecore.workspace.os.replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(best, {k: v for k, v in ckpt.items() if k not in ("format", "versions")})
    assert best.read_bytes() == before
    assert [p.name for p in best.parent.iterdir() if p.name.endswith(".tmp")] == []


class Evil:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_weights_only_loading_refuses_bad_files(small_dataset: str, home: Path, tmp_path: Path) -> None:
    summary = train(quick("custom_cnn", small_dataset, epochs=1))
    best = home / "models" / summary["run"] / "best.pt"

    evil = tmp_path / "evil.pt"
    torch.save({"format": "facecore.checkpoint/1", "payload": Evil()}, evil)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_checkpoint(evil)

    bare = tmp_path / "bare.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), bare)
    with pytest.raises(CheckpointError, match="not a facecore checkpoint"):
        load_checkpoint(bare)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(best.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        load_checkpoint(truncated)

    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(text)

    ckpt = load_checkpoint(best)
    foreign = tmp_path / "foreign.pt"
    save_checkpoint(
        foreign,
        {**{k: v for k, v in ckpt.items() if k not in ("format", "versions")}, "model": "resnet50_scratch"},
    )
    with pytest.raises(CheckpointError, match="do not fit a resnet50_scratch"):
        load_model(foreign)
    fewer = tmp_path / "fewer.pt"
    save_checkpoint(
        fewer,
        {
            **{k: v for k, v in ckpt.items() if k not in ("format", "versions")},
            "classes": ckpt["classes"][:3],
        },
    )
    with pytest.raises(CheckpointError, match="3 classes"):
        load_model(fewer)
    load_model(best)  # the good one still loads


def test_pretrained_cached_features_match_recomputed(
    small_dataset: str, home: Path, fake_imagenet_weights
) -> None:
    """The cached-feature path is exact: same metrics as recomputing the frozen layers."""
    kw = {"epochs": 1, "batch_size": 8, "augment": AugmentConfig.none()}
    cached = Trainer(TrainConfig.for_model("resnet50_pretrained", small_dataset, run_name="cached", **kw))
    assert cached.cached and "cached features" in cached.describe()
    a = cached.fit()
    b = train(
        TrainConfig.for_model(
            "resnet50_pretrained", small_dataset, run_name="full", cache_features="off", **kw
        )
    )
    assert a["feature_cache"] is True and b["feature_cache"] is False
    assert a["params_trainable"] == b["params_trainable"] < a["params_total"]
    ra, rb = read_metrics(home / "models" / a["run"]), read_metrics(home / "models" / b["run"])
    for key in ("train_loss", "val_loss"):
        assert ra[0][key] == pytest.approx(rb[0][key], rel=1e-3, abs=1e-4)
    augmented = Trainer(
        TrainConfig.for_model("resnet50_pretrained", small_dataset, epochs=1, augment=AugmentConfig())
    )
    assert not augmented.cached


def test_refuses_untrainable_dataset(yunet_home: Path, tmp_path: Path) -> None:
    from facecore.data.dataset import import_dataset
    from facecore.errors import SplitError
    from tests.helpers import make_people_tree

    import_dataset(make_people_tree(tmp_path / "one", {"Colin_Powell": 5}), "one")
    with pytest.raises(SplitError, match="at least two"):
        train(quick("custom_cnn", "one"))


def test_pickle_module_is_not_used_for_loading() -> None:
    assert pickle.HIGHEST_PROTOCOL >= 2  # loading goes through torch.load(weights_only=True) only
    src = (ROOT / "facecore" / "models" / "checkpoint.py").read_text()
    assert "weights_only=True" in src and "weights_only=False" not in src
