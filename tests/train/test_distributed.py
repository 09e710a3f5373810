"""Training with DistributedDataParallel under torchrun: 2 CPU ranks (gloo) on real LFW faces.

Each test launches PyTorch's own launcher (``torch.distributed.run``) through
:func:`facecore.train.distributed.launch`, with :mod:`tests.train.ddp_worker` as the rank's entry point (the
product's, plus hooks that dump each rank's weights or make one rank fail).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from facecore.data.transforms import AugmentConfig
from facecore.models.checkpoint import load_checkpoint, load_model
from facecore.train import distributed
from facecore.train.config import TrainConfig
from facecore.train.loop import train
from tests.helpers import fc

pytestmark = pytest.mark.slow
ENTRY = "tests.train.ddp_worker"


def config(model: str, dataset: str, **kw) -> TrainConfig:
    base = {"epochs": 1, "batch_size": 8, "workers": 0, "augment": AugmentConfig.none(), "lr": 1e-3}
    return TrainConfig.for_model(model, dataset, **(base | kw))


def launch(
    cfg: TrainConfig,
    monkeypatch,
    env: dict[str, str] | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
) -> dict:
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    return distributed.launch(cfg, run_dir=run_dir, resume=resume, entry=ENTRY)


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.timeout(900)
def test_two_ranks_train_each_model_and_keep_the_same_weights(
    small_dataset: str, fake_imagenet_weights: Path, tmp_path: Path, monkeypatch, home: Path
) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    for model in ("custom_cnn", "resnet50_scratch", "resnet50_pretrained"):
        cfg = config(model, small_dataset, nproc=2, run_name=f"ddp-{model}")
        summary = launch(cfg, monkeypatch, {"FACECORE_TEST_DUMP": str(dump)})
        assert summary["world_size"] == 2 and summary["run"] == f"ddp-{model}"
        run = home / "models" / f"ddp-{model}"
        assert len(metrics_rows(run)) == 1  # rank 0 alone wrote the epoch
        ckpt = load_checkpoint(run / "best.pt")
        assert not any(k.startswith("module.") for k in ckpt["state_dict"])
        load_model(run / "best.pt")  # a single process loads it
        a, b = (torch.load(dump / f"{model}-rank{r}.pt") for r in (0, 1))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), f"{model}: the ranks' weights differ"
        assert all(torch.equal(a[k], ckpt["state_dict"][k]) for k in a)
    assert summary["feature_cache"]  # the pretrained model cached its trunk's features, in shards


@pytest.mark.timeout(600)
def test_two_ranks_and_one_give_the_same_validation_metrics(
    small_dataset: str, fake_imagenet_weights: Path, monkeypatch, home: Path
) -> None:
    """resnet50_pretrained with only ``fc`` trained on cached features: no BatchNorm and no
    dropout train, so DDP's averaged gradient of two half batches is the one-process gradient
    of the whole batch, and the metrics must agree to float rounding."""
    common = {"epochs": 3, "trainable_from": "fc", "seed": 3}
    one = train(config("resnet50_pretrained", small_dataset, run_name="one", **common))
    two = launch(config("resnet50_pretrained", small_dataset, run_name="two", nproc=2, **common), monkeypatch)
    assert one["world_size"] == 1 and two["world_size"] == 2
    rows1, rows2 = metrics_rows(home / "models" / "one"), metrics_rows(home / "models" / "two")
    assert len(rows1) == len(rows2) == 3
    for r1, r2 in zip(rows1, rows2, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "val_f1"):
            assert float(r1[key]) == pytest.approx(float(r2[key]), rel=1e-4, abs=1e-5), (r1["epoch"], key)
    w1 = load_checkpoint(home / "models" / "one" / "last.pt")["state_dict"]
    w2 = load_checkpoint(home / "models" / "two" / "last.pt")["state_dict"]
    assert torch.allclose(w1["fc.weight"], w2["fc.weight"], atol=1e-5)


@pytest.mark.timeout(600)
def test_a_two_rank_run_resumes_with_one(small_dataset: str, monkeypatch, home: Path) -> None:
    cfg = config("custom_cnn", small_dataset, nproc=2, run_name="elastic")
    launch(cfg, monkeypatch)
    run = home / "models" / "elastic"
    resumed = config("custom_cnn", small_dataset, epochs=2, run_name="elastic")
    summary = train(resumed, resume_dir=run)
    assert summary["world_size"] == 1 and summary["epochs_run"] == 2
    assert [r["epoch"] for r in metrics_rows(run)] == ["1", "2"]
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


@pytest.mark.timeout(600)
@pytest.mark.parametrize("how", ["kill", "raise"])
def test_a_rank_that_dies_ends_the_run_with_its_name(
    small_dataset: str, monkeypatch, home: Path, how
) -> None:
    cfg = config("custom_cnn", small_dataset, epochs=3, nproc=2, run_name=f"dies-{how}")
    env = {"FACECORE_TEST_KILL_RANK" if how == "kill" else "FACECORE_TEST_RAISE_RANK": "1"}
    with pytest.raises(distributed.TrainingFailed) as caught:
        launch(cfg, monkeypatch, env)
    message = str(caught.value)
    assert "rank 1" in message, message
    assert ("SIGKILL" in message) if how == "kill" else ("simulated failure in the test" in message), message
    run = home / "models" / f"dies-{how}"
    assert "last.pt" in message and load_checkpoint(run / "last.pt")["epoch"] == 1  # epoch 1 kept
    assert not (run / "summary.json").exists()


def test_the_global_batch_must_divide_over_the_processes(small_dataset: str) -> None:
    from facecore.errors import FacecoreError

    with pytest.raises(FacecoreError, match="batch_size .* must divide by nproc"):
        config("custom_cnn", small_dataset, batch_size=9, nproc=2)


def test_the_cli_trains_with_nproc(small_dataset: str, home: Path) -> None:
    train = ["train", "--dataset", small_dataset, "--model", "custom_cnn"]
    out = fc(*train, "--epochs", "1", "--batch-size", "8", "--nproc", "2", "--no-augment",
             "--run-name", "cli", "--json", home=home).stdout  # fmt: skip
    assert json.loads(out[out.index("[") :])[0]["world_size"] == 2
    assert "(2 processes)" in out or "world_size" in out
    bad = fc(*train, "--nnodes", "2", home=home, check=False)
    assert bad.returncode == 2 and "--master-addr" in bad.stderr


@pytest.mark.timeout(600)
def test_a_background_job_trains_with_two_processes(small_dataset: str, home: Path) -> None:
    from facecore.train import jobs

    cfg = config("custom_cnn", small_dataset, epochs=2, nproc=2, run_name="job-ddp")
    job_id = jobs.start_job([cfg])
    job = jobs.wait_job(job_id, timeout=500)
    assert job.status == "done", jobs.read_log(job_id)
    assert job.runs == ["job-ddp"]  # rank 0 reported its run to the job
    summary = json.loads((home / "models" / "job-ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs_run"] == 2
    progress = json.loads((home / "jobs" / job_id / "progress.json").read_text())
    assert progress["run"] == "job-ddp" and progress["epoch"] == 2
    from facecore.cli.train import _job_line

    assert "x2 processes" in _job_line(jobs.read_job(job_id).to_dict() | {"progress": progress})


@pytest.mark.timeout(600)
def test_two_machines_on_loopback(small_dataset: str, home: Path) -> None:
    """The README's two-machine commands, as two "machines" on this one (loopback, static rendezvous)."""
    from tests.helpers import free_port

    port = str(free_port())
    base = [sys.executable, "-m", "facecore", "train", "--dataset", small_dataset, "--model", "custom_cnn",
            "--epochs", "1", "--batch-size", "8", "--no-augment", "--run-name", "two-nodes", "--nproc", "1",
            "--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", port, "--node-rank"]  # fmt: skip
    procs = [subprocess.Popen([*base, str(r)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in (0, 1)]  # fmt: skip
    outs = [p.communicate(timeout=500) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    summary = json.loads((home / "models" / "two-nodes" / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert "(2 processes)" in outs[0][0]
    assert [d.name for d in (home / "models").iterdir()] == ["two-nodes"]  # rank 0 alone made it


def test_the_killed_rank_is_named_even_when_a_peer_failed_first() -> None:
    """torchrun's "Root Cause" is the first failure it saw: a peer's broken connection can come
    before the SIGKILL of the rank that died. The message names the killed rank."""
    block = "[{i}]:\n  rank      : {i} (local_rank: {i})\n  exitcode  : {code} (pid: 1)\n"
    block += "  error_file: <N/A>\n"
    report = ("Failures:\n" + block.format(i=1, code=-9) + block.format(i=2, code=-15)
              + "-----\nRoot Cause (first observed failure):\n" + block.format(i=0, code=1)
              + "RuntimeError: Connection reset by peer\n")  # fmt: skip
    message = distributed._failure(report.splitlines(True), None, 1)
    assert message.startswith("Distributed training failed: rank 1 (local rank 1) was killed by signal")
    assert "SIGKILL" in message
