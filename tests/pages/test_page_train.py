"""The Train page in Streamlit's AppTest: forms, a real job started and stopped, history, delete."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facecore.train import jobs
from facecore.train.config import TrainConfig, setting_bounds
from tests.helpers import APP, fake_job, wait_for


def train_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest, *kinds: str) -> str:
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def progress_texts(at: AppTest) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


@pytest.fixture
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"


def test_empty_workspace(home: Path, no_weights: Path) -> None:
    at = train_page()
    assert at.title[0].value == "Train"
    assert "No dataset yet" in texts(at, "info")
    captions = texts(at, "caption")
    assert "No training job yet" in captions and "No runs yet" in captions


def test_forms_hold_each_models_defaults_and_say_how_to_get_the_weights(
    small_dataset: str, no_weights: Path
) -> None:
    at = train_page()
    assert [t.label for t in at.tabs] == ["resnet50_pretrained", "resnet50_scratch", "custom_cnn"]
    for model, epochs, lr, wd, aug in [
        ("resnet50_pretrained", 5, 3e-4, 0.0, False),
        ("resnet50_scratch", 5, 1e-3, 0.0, True),
        ("custom_cnn", 10, 3e-4, 1e-4, True),
    ]:
        assert at.number_input(key=f"train-{model}-epochs").value == epochs
        assert at.number_input(key=f"train-{model}-batch").value == 32
        assert at.number_input(key=f"train-{model}-lr").value == pytest.approx(lr)
        assert at.number_input(key=f"train-{model}-wd").value == pytest.approx(wd)
        assert at.checkbox(key=f"train-{model}-aug-hflip").value is aug
        assert at.selectbox(key=f"train-{model}-opt").value == "adam"
    assert at.selectbox(key="train-resnet50_pretrained-from").value == "layer4"
    warning = texts(at, "warning")
    assert "python -m facecore weights download" in warning and str(no_weights) in warning
    assert at.button(key="train-resnet50_pretrained-start").disabled
    assert not at.button(key="train-custom_cnn-start").disabled
    assert "trains resnet50_scratch and custom_cnn only" in texts(at, "caption")
    assert not at.button(key="train-all").disabled


#: The Train page's widget of each setting (its key's end).
NUMBER_KEYS = {
    "epochs": "epochs", "batch_size": "batch", "lr": "lr", "weight_decay": "wd", "momentum": "momentum",
    "early_stopping": "patience", "seed": "seed", "workers": "workers", "step_size": "step",
    "gamma": "gamma", "nproc": "nproc",
}  # fmt: skip
SELECT_KEYS = {
    "optimizer": "opt", "schedule": "sched", "monitor": "monitor", "cache_features": "cache",
    "device": "device", "amp": "amp",
}  # fmt: skip


def test_the_widgets_bounds_and_help_are_the_configs_metadata(
    small_dataset: str, fake_imagenet_weights: Path
) -> None:
    """min, max, step, choices and help come from TrainConfig's field metadata (the one definition
    validate and the CLI use too): e.g. up to 256 processes, as validate allows."""
    at = train_page()
    k = "train-resnet50_pretrained-"
    for name, key in NUMBER_KEYS.items():
        b, widget = setting_bounds(name), at.number_input(key=k + key)
        assert (widget.min, widget.max, widget.help) == (b.min, b.max, b.help), name
        if b.step is not None:
            assert widget.step == pytest.approx(b.step), name
    assert at.number_input(key=k + "nproc").max == 256
    for name, key in SELECT_KEYS.items():
        b, widget = setting_bounds(name), at.selectbox(key=k + key)
        assert (widget.options, widget.help) == (list(b.choices or b.options), b.help), name
    assert at.selectbox(key=k + "from").help == setting_bounds("trainable_from").help


def test_fast_path_is_announced_for_the_pretrained_model(
    small_dataset: str, fake_imagenet_weights: Path
) -> None:
    at = train_page()
    assert "Fast path" in texts(at, "info") and not texts(at, "warning")
    assert at.button(key="train-all").label == "Train all three"
    at.checkbox(key="train-resnet50_pretrained-aug-hflip").check().run()
    assert "Fast path" not in texts(at, "info")
    assert "Cached features are off" in texts(at, "caption")


def test_train_all_three_without_weights_queues_the_other_two(
    small_dataset: str, home: Path, no_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = jobs.start_job
    monkeypatch.setattr(jobs, "start_job", lambda configs, **kw: start(configs, detach=False, **kw))
    at = train_page()
    at.text_input(key="train-group").input("study").run()
    at.button(key="train-all").click().run()
    assert not at.exception
    (job,) = jobs.list_jobs()
    assert [c["model"] for c in job.configs] == ["resnet50_scratch", "custom_cnn"]
    assert job.group == "study" and job.status == "queued"
    # first in line: shown as starting (its process loads PyTorch), not as waiting for others
    assert any("Starting the training process" in t for t in progress_texts(at)), progress_texts(at)
    at.button(key=f"train-stop-{job.id}").click().run()
    assert (home / "jobs" / job.id / "stop").exists()


def test_invalid_settings_are_explained_and_block_training(
    small_dataset: str, fake_imagenet_weights: Path
) -> None:
    at = train_page()
    at.selectbox(key="train-resnet50_pretrained-cache").set_value("on")
    at.checkbox(key="train-resnet50_pretrained-aug-hflip").check().run()
    assert not at.exception
    assert "cache_features=on needs every online augmentation off" in texts(at, "error")
    assert at.button(key="train-resnet50_pretrained-start").disabled and at.button(key="train-all").disabled
    assert "Fix the settings of resnet50_pretrained" in texts(at, "caption")
    at.button(key="train-resnet50_pretrained-reset").click().run()
    assert at.selectbox(key="train-resnet50_pretrained-cache").value == "auto"
    assert not at.button(key="train-all").disabled


@pytest.mark.timeout(300)
def test_start_from_the_page_watch_stop_and_find_it_in_history(small_dataset: str, home: Path) -> None:
    at = train_page()
    at.number_input(key="train-custom_cnn-epochs").set_value(50)
    at.number_input(key="train-custom_cnn-batch").set_value(8).run()
    at.button(key="train-custom_cnn-start").click().run()
    assert not at.exception
    (job,) = jobs.list_jobs()
    assert job.configs[0]["epochs"] == 50 and job.configs[0]["batch_size"] == 8
    run = wait_for(lambda: jobs.read_job(job.id).runs, what="the job's run")[0]
    wait_for(lambda: (home / "models" / run / "metrics.csv").is_file(), what="a finished epoch")
    wait_for(lambda: (p := jobs.read_job(job.id).progress) and p.batch, what="a batch of epoch 2")
    at.run()
    assert not at.exception
    assert any("custom_cnn" in t and "epoch" in t for t in progress_texts(at)), progress_texts(at)
    assert at.get("plotly_chart"), "the live curves"
    at.button(key=f"train-stop-{job.id}").click().run()
    assert jobs.wait_job(job.id, timeout=120).status == "stopped"
    at.run()
    assert "Stopped" in texts(at, "warning")
    history = at.dataframe[0].value
    row = history[history["run"] == run].iloc[0]
    assert row["state"] == "stopped" and row["model"] == "custom_cnn"
    done, best = re.fullmatch(r"(\d+)/50, best (\d+)", row["epochs"]).groups()
    assert 1 <= int(best) <= int(done)
    # a score with three decimals (1.000 when the few validation faces are all right)
    assert re.fullmatch(r"(0\.\d{3}|1\.000)", row["val F1"]) and row["test acc"] == "-"  # not evaluated


def test_delete_a_run_with_confirmation_and_refuse_one_being_trained(home: Path, no_weights: Path) -> None:
    for name in ("old-run", "busy-run"):
        (home / "models" / name).mkdir(parents=True)
        (home / "models" / name / "config.json").write_text(
            json.dumps(TrainConfig.for_model("custom_cnn", "small").to_dict())
        )
    at = train_page()
    at.multiselect(key="train-history-curves").select("old-run").run()
    assert at.get("plotly_chart")
    at.selectbox(key="train-delete-run").select("old-run").run()
    assert at.button(key="train-delete").disabled
    at.checkbox(key="train-delete-confirm").check().run()
    at.button(key="train-delete").click().run()
    assert not at.exception and not (home / "models" / "old-run").exists()
    assert "Deleted run old-run" in texts(at, "success")
    assert list(at.dataframe[0].value["run"]) == ["busy-run"]

    fake_job(home, "j-busy", "running", runs=["busy-run"])
    at.run()
    at.selectbox(key="train-delete-run").select("busy-run")
    at.checkbox(key="train-delete-confirm").check().run()
    at.button(key="train-delete").click().run()
    assert "stop the job first" in texts(at, "error")
    assert (home / "models" / "busy-run").is_dir()


def test_running_queued_and_failed_jobs_are_shown_from_disk(home: Path, no_weights: Path) -> None:
    running = fake_job(home, "j1-running", "running", runs=["r1"])
    (running / "progress.json").write_text(
        json.dumps(
            {
                "run": "r1",
                "model": "resnet50_pretrained",
                "run_index": 0,
                "runs_total": 3,
                "epoch": 2,
                "epochs": 5,
                "batch": 3,
                "batches": 6,
                "loss": 0.5,
                "eta_seconds": 4.0,
                "feature_cache": True,
                "updated": time.time(),
            }
        )
    )
    fake_job(home, "j2-queued", "queued", created=time.time())
    failed = fake_job(
        home, "j0-failed", "failed", created=time.time() - 60, message="RuntimeError: out of memory"
    )
    (failed / "log.txt").write_text("Traceback (most recent call last):\nRuntimeError: out of memory\n")
    at = train_page()
    (text,) = progress_texts(at)
    assert "resnet50_pretrained" in text and "model 1 of 3" in text and "epoch 2/5, batch 3/6" in text
    assert "4 s left in this epoch" in text
    info = texts(at, "info")
    assert "fast path" in info and "Queued behind `j1-running`" in info
    assert "Failed: RuntimeError: out of memory" not in texts(at, "error")  # only the current jobs
    assert "Traceback" in texts(at, "code")  # the earlier failed job's log tail


def test_a_failed_job_shows_its_message_and_log_tail(home: Path, no_weights: Path) -> None:
    failed = fake_job(home, "j0-failed", "failed", message="RuntimeError: out of memory")
    (failed / "log.txt").write_text("epoch 1/10 ...\nTraceback (most recent call last):\nRuntimeError: oom\n")
    at = train_page()
    assert "Failed: RuntimeError: out of memory" in texts(at, "error")
    assert "Traceback (most recent call last)" in texts(at, "code")
    assert not at.get("progress") and not [b for b in at.button if b.key.startswith("train-stop-")]
