"""Adding a trained model from an uploaded checkpoint: every bad file is refused with a message
naming the problem, models/ stays byte-for-byte as it was, and the saved runs keep predicting."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import torch

from facecore.errors import CheckpointError
from facecore.live.inference import Predictor
from facecore.models.checkpoint import load_checkpoint, save_checkpoint
from facecore.recognize.models import clear_cache
from facecore.recognize.runs import list_runs
from facecore.train.addrun import add_run
from tests.helpers import snapshot


class Evil:
    """Unpickling this would run a shell command."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/facecore-pwned",))


def _bytes(payload: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def _variant(home: Path, tmp_path: Path, name: str, **changes) -> Path:
    """The saved run's checkpoint with some fields changed, written as a proper checkpoint."""
    ckpt = load_checkpoint(home / "models" / "tiny-cnn" / "best.pt")
    payload = {k: v for k, v in ckpt.items() if k not in ("format", "versions")}
    payload.update(changes)
    path = tmp_path / name
    save_checkpoint(path, payload)
    return path


def _predicts(home: Path, assets: Path) -> None:
    from facecore.data.images import load_rgb

    clear_cache()
    photo = load_rgb(assets / "lfw-deepfunneled" / "Colin_Powell" / "Colin_Powell_0001.jpg")
    faces = Predictor([home / "models" / "tiny-cnn"]).predict(photo)
    assert faces and faces[0].predictions[0].label


def test_bad_checkpoints_are_refused_and_nothing_changes(
    trained_home: Path, tmp_path: Path, assets: Path
) -> None:
    best = (trained_home / "models" / "tiny-cnn" / "best.pt").read_bytes()
    ckpt = load_checkpoint(trained_home / "models" / "tiny-cnn" / "best.pt")
    pre, classes = ckpt["preprocessing"], ckpt["classes"]

    def variant(**changes) -> bytes:
        return _variant(trained_home, tmp_path, "variant.pt", **changes).read_bytes()

    cases = {
        "empty.pt": (b"", "the file is empty"),
        "notes.pt": (b"these are my notes, not a model", "not a loadable facecore checkpoint"),
        "truncated.pt": (best[: len(best) // 3], "truncated, corrupt"),
        "evil.pt": (_bytes({"format": "facecore.checkpoint/1", "x": Evil()}), "weights_only=True"),
        "bare.pt": (_bytes(torch.nn.Linear(2, 2).state_dict()), "not a facecore checkpoint"),
        "other-arch.pt": (
            variant(model="resnet50_scratch", config={**ckpt["config"], "model": "resnet50_scratch"}),
            "do not fit a resnet50_scratch",
        ),
        "fewer-classes.pt": (variant(classes=classes[:2]), "with 2 classes"),
        "twice.pt": (variant(classes=[classes[0]] * len(classes)), "names a class twice"),
        "huge-input.pt": (variant(preprocessing={**pre, "input_size": 100_000}), "outside 1..1024"),
        "wrong-input.pt": (variant(preprocessing={**pre, "input_size": 96}), "does not run on a 96x96 image"),
        "threshold.pt": (variant(threshold="abc"), "threshold 'abc' is not a number from 0 to 1"),
        "weights-list.pt": (variant(state_dict=[1, 2, 3]), "do not make a usable model"),
        "dataset-list.pt": (variant(config={**ckpt["config"], "dataset": ["a"]}), "'dataset' is not a name"),
    }
    before = snapshot(trained_home / "models")
    for label, (data, message) in cases.items():
        with pytest.raises(CheckpointError, match=message) as info:
            add_run(data, label=label)
        assert str(info.value).startswith(f"{label}: "), str(info.value)
        assert "saved runs are unchanged" in str(info.value)
        assert snapshot(trained_home / "models") == before, label
    assert not Path("/tmp/facecore-pwned").exists()
    assert [r.run for r in list_runs()] == ["tiny-cnn"]
    _predicts(trained_home, assets)


def test_a_good_checkpoint_becomes_a_run_that_predicts(
    trained_home: Path, tmp_path: Path, assets: Path
) -> None:
    upload = tmp_path / "from-another-machine.pt"
    upload.write_bytes((trained_home / "models" / "tiny-cnn" / "best.pt").read_bytes())
    first = add_run(upload)
    second = add_run(upload.read_bytes(), name="tiny-cnn", label="upload.pt")
    assert first.name == "tiny-cnn-2" and second.name == "tiny-cnn-3"  # the names in use are kept
    runs = {r.run: r for r in list_runs()}
    assert set(runs) == {"tiny-cnn", "tiny-cnn-2", "tiny-cnn-3"}
    assert runs["tiny-cnn-2"].model == "custom_cnn" and runs["tiny-cnn-2"].state == "finished"
    summary = json.loads((first / "summary.json").read_text())
    assert summary["threshold"]["threshold"] == load_checkpoint(upload)["threshold"]  # Live slider start
    assert not [p for p in (trained_home / "models").iterdir() if p.name.startswith(".adding")]
    from facecore.data.images import load_rgb

    photo = load_rgb(assets / "lfw-deepfunneled" / "Colin_Powell" / "Colin_Powell_0001.jpg")
    clear_cache()
    a = Predictor([trained_home / "models" / "tiny-cnn"]).predict(photo)[0].predictions[0]
    b = Predictor([first]).predict(photo)[0].predictions[0]
    assert (a.label, round(a.confidence, 5)) == (b.label, round(b.confidence, 5))


def test_runs_add_on_the_command_line(trained_home: Path, tmp_path: Path, capsys) -> None:
    from facecore.cli.main import main

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    assert main(["runs", "add", str(bad)]) == 2
    assert f"{bad}: " in capsys.readouterr().err
    good = trained_home / "models" / "tiny-cnn" / "best.pt"
    assert main(["runs", "add", str(good), "--name", "copied"]) == 0
    assert "Added run 'copied'" in capsys.readouterr().out
