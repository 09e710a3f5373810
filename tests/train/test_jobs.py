"""Background jobs: real processes that train, queue, stop, fail, and survive a SIGKILL."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from facecore.models.checkpoint import load_checkpoint
from facecore.recognize.runs import read_metrics
from facecore.train import jobs
from facecore.train.config import TrainConfig
from tests.helpers import wait_for


def cfg(dataset: str, **kw) -> TrainConfig:
    return TrainConfig.for_model("custom_cnn", dataset, **{"epochs": 2, "batch_size": 8, **kw})


def last_epoch(home: Path, job_id: str) -> int:
    runs = jobs.read_job(job_id).runs
    if not runs or not (home / "models" / runs[0] / "last.pt").exists():
        return 0
    return load_checkpoint(home / "models" / runs[0] / "last.pt")["epoch"]


@pytest.mark.timeout(300)
def test_job_runs_in_background_and_queues_the_next(small_dataset: str, home: Path) -> None:
    first = jobs.start_job([cfg(small_dataset), cfg(small_dataset, seed=1)], group="cmp")
    second = jobs.start_job([cfg(small_dataset, epochs=1)])
    wait_for(lambda: jobs.read_job(first).status == "running", what="first job running")
    assert jobs.read_job(second).status == "queued"
    listed = {j.id: j.status for j in jobs.list_jobs()}
    assert listed[first] == "running" and listed[second] == "queued"

    done = jobs.wait_job(first, timeout=240)
    assert done.status == "done", jobs.read_log(first)
    assert len(done.runs) == 2 and done.group == "cmp"
    for run in done.runs:
        assert [r["epoch"] for r in read_metrics(home / "models" / run)] == [1, 2]
        assert load_checkpoint(home / "models" / run / "best.pt")["config"]["group"] == "cmp"
    assert jobs.wait_job(second, timeout=240).status == "done"
    started = [jobs.read_job(j).started for j in (first, second)]
    assert started[1] >= jobs.read_job(first).finished - 0.5  # never two at once
    assert "epoch 2/2" in jobs.read_log(first)


@pytest.mark.timeout(300)
def test_stop_keeps_the_last_finished_epoch(small_dataset: str, home: Path) -> None:
    job_id = jobs.start_job([cfg(small_dataset, epochs=200)])
    wait_for(lambda: last_epoch(home, job_id) >= 1, what="a finished epoch")
    jobs.stop_job(job_id)
    job = jobs.wait_job(job_id, timeout=120)
    assert job.status == "stopped" and "kept epoch" in job.message
    run = home / "models" / job.runs[0]
    kept = load_checkpoint(run / "last.pt")["epoch"]
    assert kept >= 1 and [r["epoch"] for r in read_metrics(run)] == list(range(1, kept + 1))
    load_checkpoint(run / "best.pt")


@pytest.mark.timeout(300)
def test_sigkill_mid_epoch_then_resume(small_dataset: str, home: Path) -> None:
    job_id = jobs.start_job([cfg(small_dataset, epochs=200)])
    wait_for(lambda: last_epoch(home, job_id) >= 1, what="a finished epoch")
    os.kill(jobs.read_job(job_id).pid, signal.SIGKILL)
    job = wait_for(lambda: (j := jobs.read_job(job_id)).status != "running" and j, what="failed status")
    assert job.status == "failed" and "ended unexpectedly" in job.message
    run = home / "models" / job.runs[0]
    kept = load_checkpoint(run / "last.pt")["epoch"]
    load_checkpoint(run / "best.pt")

    resumed = jobs.start_job([cfg(small_dataset, epochs=kept + 1)], resume_run=run.name)
    assert jobs.wait_job(resumed, timeout=240).status == "done", jobs.read_log(resumed)
    assert [r["epoch"] for r in read_metrics(run)] == list(range(1, kept + 2))


@pytest.mark.timeout(120)
def test_failed_job_keeps_its_traceback(home: Path) -> None:
    job_id = jobs.start_job([cfg("no-such-dataset")])
    job = jobs.wait_job(job_id, timeout=100)
    assert job.status == "failed"
    assert "No dataset named 'no-such-dataset'" in job.message
    assert "Traceback" in jobs.read_log(job_id)


def test_stop_a_queued_job_and_unknown_ids(home: Path) -> None:
    job_id = jobs.start_job([cfg("whatever")], detach=False)
    jobs.stop_job(job_id)
    assert jobs.run_job(job_id) == 0
    assert jobs.read_job(job_id).status == "stopped"
    with pytest.raises(jobs.JobError, match="No job"):
        jobs.read_job("nope")
