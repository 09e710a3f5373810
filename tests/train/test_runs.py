"""Runs: listed with their final scores and group, deleted safely, never while a job trains them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facecore.errors import RunError
from facecore.evaluate.evaluation import evaluate_run
from facecore.models.registry import list_models
from facecore.recognize.runs import list_runs
from facecore.train import jobs
from facecore.train.config import TrainConfig
from facecore.train.loop import Trainer
from facecore.train.runs import delete_run, trainable_configs
from tests.helpers import fake_job, wait_for


def tiny(dataset: str, **kw) -> TrainConfig:
    return TrainConfig.for_model("custom_cnn", dataset, **{"epochs": 1, "batch_size": 8, **kw})


def test_list_runs_with_final_scores_group_and_test_evaluation(small_dataset: str, home: Path) -> None:
    assert list_runs() == []
    summary = Trainer(tiny(small_dataset, group="g1", run_name="done-run")).fit()
    evaluate_run("done-run", split="test", latency=False)
    partial = home / "models" / "stopped-run"
    partial.mkdir()
    (partial / "config.json").write_text(json.dumps(tiny("other", epochs=5, monitor="val_f1").to_dict()))
    (partial / "metrics.csv").write_text(
        "epoch,train_loss,train_acc,val_loss,val_acc,val_f1,lr,epoch_seconds,images_per_s\n"
        "1,1.2,0.4,1.1,0.5,0.45,0.0003,2.0,12\n2,1.0,0.5,1.3,0.6,0.55,0.0003,2.0,12\n"
    )
    (home / "models" / "empty-run").mkdir()
    (home / "models" / ".deleting-old-1234").mkdir()

    runs = {r.run: r for r in list_runs()}
    assert set(runs) == {"done-run", "stopped-run", "empty-run"}
    done = runs["done-run"]
    test = json.loads((home / "models" / "done-run" / "eval_test" / "metrics.json").read_text())
    assert done.state == "finished" and done.model == "custom_cnn" and done.group == "g1"
    assert done.dataset == small_dataset and done.epochs_run == 1 and done.best_epoch == 1
    assert done.val_acc == summary["best"]["val_acc"] and done.val_f1 == summary["best"]["val_f1"]
    assert done.test_acc == test["accuracy"] and done.started and done.job is None
    stopped = runs["stopped-run"]
    assert stopped.state == "stopped" and (stopped.epochs_run, stopped.epochs) == (2, 5)
    assert stopped.best_epoch == 2 and stopped.val_f1 == 0.55  # monitor val_f1 picks epoch 2
    assert stopped.test_acc is None
    assert runs["empty-run"].state == "empty" and runs["empty-run"].model is None
    assert [r.run for r in list_runs(group="g1")] == ["done-run"]
    assert [r.run for r in list_runs(dataset="other")] == ["stopped-run"]


def test_delete_run_removes_it_and_refuses_other_names(home: Path) -> None:
    run = home / "models" / "old-run"
    (run / "eval_test").mkdir(parents=True)
    (run / "best.pt").write_bytes(b"x")
    for bad in ("../old-run", ".hidden", "", "old-run/eval_test", "missing"):
        with pytest.raises(RunError):
            delete_run(bad)
    assert delete_run("old-run") == run
    assert not run.exists() and list(run.parent.iterdir()) == []
    with pytest.raises(RunError, match="No run 'old-run'"):
        delete_run("old-run")


def test_delete_refused_while_a_running_job_may_be_creating_the_run(home: Path) -> None:
    cfg = TrainConfig.for_model("custom_cnn", "small").to_dict()
    fake_job(home, "j-setup", "running", configs=[cfg])
    setting_up = home / "models" / "small-custom_cnn-20260101-000000"
    setting_up.mkdir(parents=True)
    other = home / "models" / "unrelated"
    other.mkdir()
    with pytest.raises(RunError, match="job j-setup"):
        delete_run(setting_up.name)
    delete_run("unrelated")


@pytest.mark.timeout(300)
def test_delete_refused_while_a_real_job_trains_the_run(small_dataset: str, home: Path) -> None:
    job_id = jobs.start_job([tiny(small_dataset, epochs=200)])
    run = wait_for(lambda: jobs.read_job(job_id).runs, what="the job's run")[0]
    listed = {r.run: r for r in list_runs()}[run]
    assert listed.state == "training" and listed.job == job_id
    with pytest.raises(RunError, match=f"job {job_id}; stop the job first"):
        delete_run(run)
    assert (home / "models" / run).is_dir()
    jobs.stop_job(job_id)
    assert jobs.wait_job(job_id, timeout=120).status == "stopped"
    delete_run(run)
    assert run not in {r.run for r in list_runs()}


def test_a_queued_resume_also_holds_its_run(home: Path) -> None:
    (home / "models" / "to-resume").mkdir(parents=True)
    fake_job(home, "j-queued", "queued", resume_run="to-resume")
    with pytest.raises(RunError, match="job j-queued"):
        delete_run("to-resume")


def test_trainable_configs_skips_the_pretrained_model_without_weights(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    configs = [TrainConfig.for_model(m, "d") for m in list_models(compared=True)]
    kept, skipped = trainable_configs(configs)
    assert [c.model for c in kept] == ["resnet50_scratch", "custom_cnn"]
    reason = skipped["resnet50_pretrained"]
    assert "python -m facecore weights download" in reason
    assert str(tmp_path / "no-weights" / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth") in reason


def test_trainable_configs_keeps_all_three_with_weights(home: Path, fake_imagenet_weights: Path) -> None:
    configs = [TrainConfig.for_model(m, "d") for m in ("resnet50_pretrained", "custom_cnn")]
    assert trainable_configs(configs) == (configs, {})
