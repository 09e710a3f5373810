"""The command line, run as a user runs it: ``python -m facecore ...`` in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import LFW, fc


def test_import_info_and_refusals(yunet_home: Path, people_tree: Path) -> None:
    out = fc("dataset", "import", str(people_tree), "--name", "faces", home=yunet_home).stdout
    assert "faces found: 32, not found: 0" in out and "Colin_Powell" in out
    info = json.loads(fc("dataset", "info", "faces", "--json", home=yunet_home).stdout)
    assert info["split"] == {"train": 24, "val": 4, "test": 4}
    again = fc("dataset", "import", str(people_tree), "--name", "faces", home=yunet_home, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr
    listed = fc("dataset", "list", home=yunet_home).stdout
    assert "faces" in listed and "train/val/test 24/4/4" in listed


def test_sample_command_from_a_people_tree(yunet_home: Path, assets: Path) -> None:
    out = fc(
        "dataset",
        "sample",
        "--source",
        str(LFW),
        "--name",
        "lfw3",
        "--people",
        "3",
        "--unknown",
        "9",
        "--max-per-person",
        "9",
        "--json",
        home=yunet_home,
    ).stdout
    report = json.loads(out)
    assert sorted(report["classes"]) == ["Colin_Powell", "George_W_Bush", "Tony_Blair", "Unknown"]
    assert sum(c["stored"] for c in report["classes"].values()) == 36


def test_models_weights_and_detect(home: Path, assets: Path, tmp_path: Path) -> None:
    models = json.loads(fc("models", "list", "--json", home=home).stdout)
    names = [m["name"] for m in models]
    assert names[:3] == ["resnet50_pretrained", "resnet50_scratch", "custom_cnn"]
    status = fc("weights", "status", home=home, env={"TORCH_HOME": str(tmp_path / "th")}).stdout
    assert "missing" in status and "resnet50-11ad3fa6.pth" in status and "weights download" in status
    dl = fc("weights", "download", home=home, check=False, env={"TORCH_HOME": str(tmp_path / "th")})
    assert dl.returncode == 2 and "hub/checkpoints/resnet50-11ad3fa6.pth" in dl.stderr
    found = json.loads(
        fc(
            "detect", str(assets / "detection" / "2008_001322.jpg"), "--detector", "haar", "--json", home=home
        ).stdout
    )
    assert found["detector"] == "haar" and len(found["faces"]) >= 2


@pytest.mark.timeout(300)
def test_train_background_job_list_and_show(small_dataset: str, home: Path) -> None:
    out = fc(
        "train",
        "--dataset",
        small_dataset,
        "--model",
        "custom_cnn",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--background",
        home=home,
    ).stdout
    job_id = out.split()[2].rstrip(".")
    shown = fc("jobs", "show", job_id, "--follow", home=home).stdout
    assert "epoch 1/1" in shown and "done" in shown
    rows = json.loads(fc("jobs", "list", "--json", home=home).stdout)
    assert rows[0]["id"] == job_id and rows[0]["status"] == "done" and len(rows[0]["runs"]) == 1


def test_every_training_setting_is_a_flag() -> None:
    """The train command's flags are generated from TrainConfig: momentum, step size, gamma and the
    FAR target (which the Train page offers) reach the config, and no field is left out."""
    from dataclasses import fields

    from facecore.cli.main import build_parser
    from facecore.cli.train import configs_from_args
    from facecore.train.config import TrainConfig

    argv = ["train", "--dataset", "d", "--model", "custom_cnn", "--model", "resnet50_scratch",
            "--optimizer", "sgd", "--momentum", "0.5", "--schedule", "step", "--step-size", "2",
            "--gamma", "0.25", "--target-far", "0.05", "--channels-last", "off",
            "--run-name", "r"]  # fmt: skip
    configs = configs_from_args(build_parser().parse_args(argv))
    assert [c.model for c in configs] == ["custom_cnn", "resnet50_scratch"]
    for cfg in configs:
        got = (cfg.optimizer, cfg.momentum, cfg.schedule, cfg.step_size, cfg.gamma)
        assert got == ("sgd", 0.5, "step", 2, 0.25)
        assert (cfg.target_far, cfg.channels_last) == (0.05, "off")
    assert [c.run_name for c in configs] == ["r-custom_cnn", "r-resnet50_scratch"]
    assert configs[0].epochs == TrainConfig.for_model("custom_cnn", "d").epochs  # the model's default
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for f in fields(TrainConfig):
        if f.name not in ("dataset", "model", "augment"):
            assert f"--{f.name.replace('_', '-')}" in help_text, f.name


def test_launch_options_that_cannot_go_together_are_a_config_error() -> None:
    from facecore.cli.main import build_parser
    from facecore.cli.train import _launch_options
    from facecore.errors import ConfigError

    base = ["train", "--dataset", "d", "--model", "custom_cnn", "--nnodes", "2"]
    with pytest.raises(ConfigError, match="runs in the foreground: drop --background"):
        _launch_options(build_parser().parse_args([*base, "--master-addr", "h", "--background"]))
    with pytest.raises(ConfigError, match="give rank 0's --master-addr"):
        _launch_options(build_parser().parse_args(base))
    assert _launch_options(build_parser().parse_args(base[:-2])) == {}
